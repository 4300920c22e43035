//! The error contract (docs/contract.md): every refused request is a status code and
//! `{"detail": "<what is wrong>"}`, the one error type of the crate that reaches HTTP.

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::decoding::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: a body that is not UTF-8 JSON (RFC 8259), is nested too deeply, or could not be read.
    BadRequest(String),
    /// 404: no such path.
    NotFound,
    /// 405: the path exists, the method does not; `allow` lists the one it takes.
    MethodNotAllowed { allow: &'static str },
    /// 413: the body is over `MAX_BODY_BYTES`.
    PayloadTooLarge(String),
    /// 415: the content type is not `application/json`.
    UnsupportedMediaType(String),
    /// 422: valid JSON that is not a usable request, or an image that cannot be used.
    Unprocessable(String),
    /// 503: the service is shutting down and takes no more work.
    Unavailable(String),
    /// 504: the request's processing took longer than `REQUEST_TIMEOUT_S`.
    GatewayTimeout(String),
    /// 500: a fault of the service itself (never the client's input).
    Internal(String),
}

impl ApiError {
    pub fn detail(&self) -> String {
        match self {
            ApiError::NotFound => "Not Found".into(),
            ApiError::MethodNotAllowed { .. } => "Method Not Allowed".into(),
            ApiError::BadRequest(detail)
            | ApiError::PayloadTooLarge(detail)
            | ApiError::UnsupportedMediaType(detail)
            | ApiError::Unprocessable(detail)
            | ApiError::Unavailable(detail)
            | ApiError::GatewayTimeout(detail)
            | ApiError::Internal(detail) => detail.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status_code().as_u16(), self.detail())
    }
}

impl std::error::Error for ApiError {}

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        ApiError::Unprocessable(error.to_string())
    }
}

#[derive(Serialize)]
pub struct Detail<'a> {
    pub detail: &'a str,
}

/// `{"detail": ...}` with the given status.
pub fn detail_response(status: StatusCode, detail: &str) -> HttpResponse {
    HttpResponse::build(status).json(Detail { detail })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = detail_response(self.status_code(), &self.detail());
        if let ApiError::MethodNotAllowed { allow } = self {
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    async fn body_of(error: &ApiError) -> serde_json::Value {
        let response = error.error_response();
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        serde_json::from_slice(&to_bytes(response.into_body()).await.unwrap()).unwrap()
    }

    #[actix_web::test]
    async fn every_error_maps_to_its_status_and_a_detail() {
        let cases = [
            (ApiError::BadRequest("empty".into()), 400, "empty"),
            (ApiError::NotFound, 404, "Not Found"),
            (ApiError::MethodNotAllowed { allow: "POST" }, 405, "Method Not Allowed"),
            (ApiError::PayloadTooLarge("big".into()), 413, "big"),
            (ApiError::UnsupportedMediaType("text/plain".into()), 415, "text/plain"),
            (ApiError::Unprocessable("no image".into()), 422, "no image"),
            (ApiError::Unavailable("stopping".into()), 503, "stopping"),
            (ApiError::GatewayTimeout("slow".into()), 504, "slow"),
            (ApiError::Internal("bug".into()), 500, "bug"),
        ];
        for (error, status, detail) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error}");
            assert_eq!(body_of(&error).await, serde_json::json!({ "detail": detail }));
        }
    }

    #[test]
    fn method_not_allowed_says_what_is() {
        let response = ApiError::MethodNotAllowed { allow: "GET" }.error_response();
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "GET");
    }

    #[test]
    fn decode_errors_are_unprocessable() {
        let error: ApiError = DecodeError::NotAnImage("x".into()).into();
        assert_eq!(error, ApiError::Unprocessable("image is not a decodable JPEG or PNG file".into()));
    }
}
