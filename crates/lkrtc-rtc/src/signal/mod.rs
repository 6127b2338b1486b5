//! The LiveKit signal client: the WebSocket ([`connection`]), its TLS for `wss://` ([`tls`]), the
//! URL it connects to ([`url`]) and the sans-IO handling of what the server says ([`session`]).

pub mod connection;
pub mod session;
pub mod tls;
pub mod url;
