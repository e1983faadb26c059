//! One error type for the whole application. It renders as `{"error": …}` JSON; page routes
//! pass through [`crate::web::html_errors`], which turns the same error into a zh-CN page.
//! Internal details are logged, never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid input field and why, in zh-CN.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FieldError {
    /// The field's name as sent by the client.
    pub field: String,
    /// What is wrong with it, in zh-CN.
    pub message: String,
}

/// Collects field errors while parsing a form or JSON body.
#[derive(Clone, Debug, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// Records one bad field.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
    /// Parses a value, recording the error under `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }
    /// Fails with 422 when anything was recorded.
    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() { Ok(()) } else { Err(AppError::Validation(self.0)) }
    }
    /// The message for one field, for templates.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input failed validation (422) with per-field messages.
    #[error("提交的内容有误，请检查标出的字段")]
    Validation(Vec<FieldError>),
    /// Malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not logged in or the session expired (401).
    #[error("请先登录")]
    Unauthorized,
    /// Wrong username or password (401).
    #[error("用户名或密码错误")]
    BadCredentials,
    /// The account is locked (423).
    #[error("{0}")]
    Locked(String),
    /// Too many attempts from one address (429).
    #[error("{0}")]
    TooMany(String),
    /// The request's body is over the limit (413).
    #[error("请求内容过大（不能超过 32 MB）")]
    TooLarge,
    /// Logged in but the role lacks the permission (403).
    #[error("您没有执行此操作的权限")]
    Forbidden,
    /// A form was submitted without a valid CSRF token (403).
    #[error("表单已过期或来源无效，请刷新页面后重试")]
    Csrf,
    /// Not found — also what an out-of-scope record looks like, so existence never leaks (404).
    #[error("未找到该记录，或不在您的管辖范围内")]
    NotFound,
    /// A conflicting state or a unique key already taken (409).
    #[error("{0}")]
    Conflict(String),
    /// The password must be changed before anything else (403).
    #[error("请先修改初始密码")]
    PasswordChangeRequired,
    /// Anything unexpected (500); the detail goes to the log only.
    #[error("服务器内部错误，请稍后重试")]
    Internal(String),
}

impl AppError {
    /// A body that could not be read: over the limit (413, said so) or broken off (400).
    pub fn unread_body(status: StatusCode) -> AppError {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge
        } else {
            AppError::BadRequest("请求内容读取失败".into())
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Locked(_) => StatusCode::LOCKED,
            AppError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Forbidden | AppError::Csrf | AppError::PasswordChangeRequired => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message for operators (CLI, logs): internal detail included.
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal(d) => format!("{self}（{d}）"),
            // By the field's Chinese name where it has one, and not twice.
            AppError::Validation(v) => v
                .iter()
                .map(|f| match crate::web::field_prefix(&f.field, &f.message) {
                    "" if !crate::web::field_label(&f.field).is_empty() => f.message.clone(),
                    "" => format!("{}：{}", f.field, f.message),
                    l => format!("{l}：{}", f.message),
                })
                .collect::<Vec<_>>()
                .join("；"),
            e => e.to_string(),
        }
    }

    /// One-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        AppError::Validation(vec![FieldError { field: field.into(), message: message.into() }])
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return AppError::Conflict("该编码或名称已存在".into());
            }
            if db.is_foreign_key_violation() {
                return AppError::Conflict("仍有其他记录引用它，不能删除".into());
            }
        }
        if matches!(e, sqlx::Error::RowNotFound) {
            return AppError::NotFound;
        }
        AppError::Internal(format!("database: {e}"))
    }
}

impl From<crate::privacy::PrivacyError> for AppError {
    fn from(e: crate::privacy::PrivacyError) -> Self {
        AppError::Internal(format!("privacy: {e}"))
    }
}

/// The page renderer reads this from the response to show the error as HTML.
#[derive(Clone, Debug)]
pub struct ErrorInfo {
    /// The zh-CN message.
    pub message: String,
    /// Field-level messages, if any.
    pub fields: Vec<FieldError>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let message = self.to_string();
        let fields = match &self {
            AppError::Validation(f) => f.clone(),
            _ => Vec::new(),
        };
        let mut resp = (status, Json(ErrorBody { error: message.clone(), fields: &fields })).into_response();
        resp.extensions_mut().insert(ErrorInfo { message, fields });
        resp
    }
}

/// Result alias for handlers and domain functions.
pub type AppResult<T> = Result<T, AppError>;
