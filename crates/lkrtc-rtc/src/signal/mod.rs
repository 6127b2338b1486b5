//! The LiveKit signal client: the WebSocket ([`connection`]), the URL it connects to ([`url`]) and
//! the sans-IO handling of what the server says ([`session`]).

pub mod connection;
pub mod session;
pub mod url;
