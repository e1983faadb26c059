//! The OpenAPI 3.1 document at `/api/openapi.json`, generated from one table of operations.
//! A test walks the table against the real router, so an entry without a route fails CI.

use axum::Json;
use serde_json::{Map, Value, json};

/// (method, path, summary, tag, request body schema hint)
pub const OPS: &[(&str, &str, &str, &str)] = &[
    ("post", "/api/v1/auth/login", "登录，返回会话令牌 {token}", "账号"),
    (
        "post",
        "/api/v1/auth/logout",
        "退出登录（结束会话；个人访问令牌请用 DELETE /api/v1/tokens/{id} 吊销，用令牌调用回答 400）",
        "账号",
    ),
    (
        "post",
        "/api/v1/auth/password",
        "修改本人密码 {current,password,confirm}：同时吊销本人全部访问令牌、退出其他会话；当前密码错误计入锁定（锁定中回答 423）",
        "账号",
    ),
    ("get", "/api/v1/me", "当前账号", "账号"),
    ("get", "/api/v1/users", "管辖范围内的账号 ?q&role&page&per_page", "账号"),
    ("post", "/api/v1/users", "新建账号 {username,display_name,role,scope,password}", "账号"),
    ("post", "/api/v1/users/{name}/{action}", "lock / unlock / reset-password {password}", "账号"),
    ("get", "/api/v1/tokens", "本人的访问令牌", "账号"),
    (
        "post",
        "/api/v1/tokens",
        "签发访问令牌 {name, expires_in_days（默认 180，1～3650）}；须登录会话，用访问令牌调用回答 403",
        "账号",
    ),
    ("delete", "/api/v1/tokens/{id}", "吊销访问令牌", "账号"),
    ("get", "/api/v1/overview", "管辖范围内的统计数", "总览"),
    ("get", "/api/v1/nodes", "区域节点列表 ?kind&under&parent&q&retired&page&per_page", "区域"),
    ("post", "/api/v1/nodes", "新建节点 {kind,code,parent,name,address,note}", "区域"),
    ("get", "/api/v1/nodes/export.xlsx", "按筛选条件导出节点（xlsx）", "区域"),
    ("get", "/api/v1/nodes/{code}", "节点详情", "区域"),
    ("patch", "/api/v1/nodes/{code}", "修改节点 {name,address,note,version}", "区域"),
    ("delete", "/api/v1/nodes/{code}", "删除未被引用的节点", "区域"),
    ("post", "/api/v1/nodes/{code}/{act}", "retire（停用）/ restore（恢复）", "区域"),
    ("get", "/api/v1/nodes/{code}/geojson", "节点下全部网格边界（FeatureCollection）", "网格"),
    ("put", "/api/v1/nodes/{code}/geometry", "设置社区或网格边界 ?crs=wgs84|gcj02", "网格"),
    ("get", "/api/v1/grids", "网格列表 ?community&q&page&per_page", "网格"),
    ("post", "/api/v1/grids/import", "导入网格边界 ?community&crs（全部成功才写入）", "网格"),
    ("get", "/api/v1/grids/locate", "坐标所在网格 ?lng&lat&crs", "网格"),
    ("get", "/api/v1/grids/{code}", "网格详情（含 geometry）", "网格"),
    ("get", "/api/v1/persons", "居民列表（脱敏）?q&node&page&per_page", "居民"),
    ("post", "/api/v1/persons", "登记居民 {name,id_number,mobile,node,room,tags}", "居民"),
    ("get", "/api/v1/persons/export.xlsx", "导出居民名单（脱敏，留痕）", "居民"),
    ("get", "/api/v1/persons/{id}", "居民详情（脱敏）", "居民"),
    ("put", "/api/v1/persons/{id}", "修改居民信息 {name,id_number,mobile,node,room,tags}", "居民"),
    ("post", "/api/v1/persons/{id}/retire", "登记迁出 {reason}", "居民"),
    ("post", "/api/v1/persons/{id}/reveal", "查看完整身份证号和手机号（留痕）{reason}", "居民"),
    ("get", "/api/v1/audit", "审计日志 ?action&actor&from&to&q&page", "审计"),
    ("get", "/api/v1/audit/export.xlsx", "导出审计日志（xlsx）", "审计"),
    ("get", "/api/v1/audit/verify", "校验审计日志哈希链", "审计"),
    ("get", "/api/v1/categories", "事项类别（含时限、扩展属性）", "事项"),
    ("post", "/api/v1/categories", "新建或修改事项类别（县级管理员）", "事项"),
    ("get", "/api/v1/calendar", "工作日历（节假日与调休）", "事项"),
    ("put", "/api/v1/calendar", "保存工作日历 {text}", "事项"),
    ("get", "/api/v1/units", "承办单位 ?q&kind&community&page", "事项"),
    ("post", "/api/v1/units", "新建承办单位 {code,name,kind,contact_name,contact_phone,communities}", "事项"),
    (
        "post",
        "/api/v1/cases",
        "受理事项 {category,description,lng,lat,crs?,channel?,reporter_name?,reporter_phone?}；请求头 Idempotency-Key 可选（1～100 个可见 ASCII 字符）：同一账号以同一键重发只建一件，答复第一件的编号",
        "事项",
    ),
    (
        "get",
        "/api/v1/cases",
        "事项列表与全文搜索 ?q&status&category&channel&grid&community&unit&overdue&level&mine&from&to&page",
        "事项",
    ),
    ("get", "/api/v1/cases/export.xlsx", "导出事项清单 Excel（同列表的筛选参数，报事人脱敏，记入审计）", "事项"),
    ("get", "/api/v1/cases/{number}", "事项详情（含 history、version）", "事项"),
    (
        "post",
        "/api/v1/cases/{number}/actions",
        "办理 {action,version?,note?,assignee?,contacted?,solved?,satisfaction?,hours?}",
        "事项",
    ),
    ("get", "/api/v1/cases/{number}/assignees", "派单建议 [{id,name,kind}]", "事项"),
    (
        "post",
        "/api/v1/cases/{number}/reveal",
        "查看报事人完整姓名与手机号（回访用；承办该事项的工作人员，须填事由 {reason}，记入审计）→ {reporter_name,reporter_phone}",
        "事项",
    ),
    ("get", "/api/v1/cases/{number}/photos/{id}", "事项照片", "事项"),
    ("get", "/api/v1/rates", "三率及排名 ?level=county|street|community|unit&from&to", "事项"),
    ("get", "/api/v1/rates/export.xlsx", "导出排名（xlsx）", "事项"),
    ("get", "/api/v1/rates/weights", "综合得分权重 {response,solve,satisfaction}", "事项"),
    ("put", "/api/v1/rates/weights", "设置综合得分权重（县级管理员；各 0～1，和为 1）", "事项"),
    ("get", "/api/v1/notifications", "站内消息 ?after", "消息"),
    ("post", "/api/v1/notifications/read", "标为已读 {upto?}", "消息"),
    ("get", "/api/v1/events", "实时消息（text/event-stream）", "消息"),
    ("get", "/api/v1/webhooks", "事件推送地址", "消息"),
    ("post", "/api/v1/webhooks", "登记推送地址 {url,unit?}（返回签名密钥）", "消息"),
    ("delete", "/api/v1/webhooks/{id}", "停用推送地址", "消息"),
    ("get", "/open311/v2/{file}", "Open311 GeoReport v2：discovery / services / requests（.xml 或 .json）", "Open311"),
    ("post", "/open311/v2/{file}", "Open311：提交 requests.xml|json（api_key）", "Open311"),
    ("get", "/open311/v2/services/{file}", "Open311：服务定义", "Open311"),
    ("get", "/open311/v2/requests/{file}", "Open311：单个请求", "Open311"),
    ("get", "/open311/v2/tokens/{file}", "Open311：令牌换请求编号", "Open311"),
    ("get", "/api/v1/registers", "台账目录 [{name,title,system}]", "台账"),
    ("get", "/api/v1/registers/{name}", "台账列表 ?q（汉字/全拼/首字母）&sort&page&per_page&字段=值", "台账"),
    ("post", "/api/v1/registers/{name}", "新增台账记录", "台账"),
    ("get", "/api/v1/registers/{name}/template.xlsx", "导入模板（xlsx）", "台账"),
    ("get", "/api/v1/registers/{name}/export.xlsx", "导出（xlsx）?q", "台账"),
    (
        "post",
        "/api/v1/registers/{name}/import",
        "导入 xlsx ?dry_run=true|false → {ok,created,errors:[{row,column,message}]}",
        "台账",
    ),
    ("get", "/api/v1/registers/{name}/{id}", "台账记录（含变更记录）", "台账"),
    ("put", "/api/v1/registers/{name}/{id}", "修改台账记录", "台账"),
    (
        "post",
        "/api/v1/registers/{name}/{id}/{act}",
        "retire（停用）/ restore（恢复）/ to-case（转为事项）/ reveal（查看加密内容，{reason}，记入审计）",
        "台账",
    ),
    ("get", "/api/openapi.json", "本文档", "系统"),
    ("get", "/healthz", "存活检查", "系统"),
    ("get", "/readyz", "就绪检查（数据库可达）", "系统"),
    ("get", "/metrics", "Prometheus 指标", "系统"),
];

/// Builds the document.
pub fn spec() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, tag) in OPS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "tags": [tag],
            "parameters": params,
            "responses": {
                "200": {"description": "成功", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"}
            }
        });
        if path.starts_with("/api/v1/registers/") && path.ends_with("/import") {
            // The workbook itself, as the body (curl --data-binary @file.xlsx).
            op["requestBody"] = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        } else if matches!(*method, "post" | "put" | "patch") {
            op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        if path.starts_with("/api/v1/") && *path != "/api/v1/auth/login" {
            op["security"] = json!([{"bearer": []}, {"cookie": []}]);
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "邻里 linli API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "城市基层党建综合体平台接口。错误统一为 {\"error\": 说明, \"fields\": [{field, message}]}。"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "会话令牌（/api/v1/auth/login）或个人访问令牌（lpat_…）"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "linli_session"}
            },
            "responses": {
                "Error": {"description": "错误", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "string"}, "fields": {"type": "array", "items": {"type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}
                }}}}
            }
        }
    })
}

/// GET /api/openapi.json
pub async fn document() -> Json<Value> {
    Json(spec())
}
