//! WebSocket over an upgraded HTTP connection, with the `tungstenite` crate (re-exported, so the
//! versions match).
//!
//! # Examples
//! A server that sends every text message back upper-cased:
//! ```no_run
//! use gevent::http::websocket::{self, tungstenite::Message};
//! use gevent::http::{Response, ResponseBody, Server};
//!
//! let server = Server::bind("127.0.0.1:0", |req| {
//!     websocket::upgrade(&req, |mut ws| {
//!         while let Ok(msg) = ws.read() {
//!             if let Message::Text(t) = msg {
//!                 if ws.send(Message::text(t.to_uppercase())).is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!     })
//! })
//! .unwrap();
//! server.serve_forever();
//! ```

pub use tungstenite;

use ::http::header::{self, HeaderValue};
use ::http::{Method, Request, Response, StatusCode};
use tungstenite::protocol::Role;

use super::{Body, ResponseBody, Upgraded};

/// A server-side WebSocket over a taken-over connection. Its `read` and `send` park the calling
/// greenlet (cancel safety: a kill or Timeout there closes the connection).
pub type WebSocket = tungstenite::WebSocket<Upgraded>;

/// Whether `req` asks for a WebSocket upgrade (`Upgrade: websocket`).
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Answers a WebSocket handshake: a `101 Switching Protocols` response whose connection is handed
/// to `f` as a [`WebSocket`] once sent (in the connection's greenlet). A request that is not a
/// valid handshake gets 400 (426 for a protocol version other than 13).
pub fn upgrade(req: &Request<Body>, f: impl FnOnce(WebSocket) + 'static) -> Response<ResponseBody> {
    let h = req.headers();
    let connection_upgrade = h.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    let key = h.get(header::SEC_WEBSOCKET_KEY);
    if req.method() != Method::GET
        || !connection_upgrade
        || !is_upgrade_request(req)
        || key.is_none()
    {
        return error(StatusCode::BAD_REQUEST, "not a WebSocket handshake\n");
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut r = error(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let accept = tungstenite::handshake::derive_accept_key(key.map_or(&[][..], |k| k.as_bytes()));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(ResponseBody::upgrade(move |conn| {
            f(tungstenite::WebSocket::from_raw_socket(
                conn,
                Role::Server,
                None,
            ));
        }))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "handshake\n"))
}

fn error(status: StatusCode, msg: &'static str) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::from(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
