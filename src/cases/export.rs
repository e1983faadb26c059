//! The case list as an Excel workbook: the list's own filters and scope, up to
//! [`EXPORT_MAX`] rows, reporters masked as on screen; the export itself is audited.

use axum::extract::State;
use axum::response::Response;

use super::store::{self, CaseFilter};
use crate::app::AppState;
use crate::audit;
use crate::auth::Principal;
use crate::db::list::EXPORT_MAX;
use crate::error::AppResult;
use crate::web::Q;
use crate::web::xlsx::{Cell, download, workbook};

/// The columns, in order.
const HEADERS: [&str; 17] = [
    "事项编号",
    "类别",
    "标题",
    "状态",
    "来源渠道",
    "社区编码",
    "网格编码",
    "地址",
    "承办对象",
    "办理层级",
    "报事人（脱敏）",
    "联系电话（脱敏）",
    "登记时间",
    "办理时限",
    "是否超期",
    "返工次数",
    "满意度",
];

/// The filtered list `p` may see, as xlsx bytes.
pub async fn xlsx(st: &AppState, p: &Principal, f: &CaseFilter) -> AppResult<Vec<u8>> {
    let mut f = f.clone();
    (f.page, f.per_page) = (Some(1), Some(EXPORT_MAX));
    let page = store::list(st, p, &f).await?;
    let summary = format!("导出事项清单 {} 件（报事人脱敏）", page.items.len());
    audit::exported(st, p, "case", &summary).await?;
    let rows = page.items.iter().map(|c| {
        vec![
            Cell::from(c.number.as_str()),
            c.category_name.as_str().into(),
            c.title.as_str().into(),
            c.status_label.into(),
            c.channel_label.into(),
            c.community_code.as_str().into(),
            c.grid_code.as_str().into(),
            c.address.as_str().into(),
            c.assignee_name.as_str().into(),
            c.level_label.into(),
            c.reporter_name.as_str().into(),
            c.reporter_phone.as_str().into(),
            c.created_at.as_str().into(),
            c.resolve_due.as_deref().unwrap_or_default().into(),
            (if c.overdue { "是" } else { "否" }).into(),
            Cell::from(c.rework_count),
            c.satisfaction_label.into(),
        ]
    });
    workbook("事项清单", &HEADERS, rows)
}

/// `GET /cases/export.xlsx` and `/api/v1/cases/export.xlsx`: the list's query string.
pub async fn download_xlsx(State(st): State<AppState>, p: Principal, Q(f): Q<CaseFilter>) -> AppResult<Response> {
    Ok(download("事项清单.xlsx", xlsx(&st, &p, &f).await?))
}
