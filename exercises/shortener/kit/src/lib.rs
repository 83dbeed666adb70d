//! Scaffolding for topic 19, the URL shortener capstone. Never an answer.
//!
//! The capstone's exercises each build one part of a URL shortener (code allocation, the HTTP
//! API, the read path's cache, click analytics). What a real service gets from its platform lives
//! here: a harness that serves an axum router on `127.0.0.1:<random port>` and a small HTTP client
//! over hyper ([`http`]), the shared counter the servers lease id ranges from ([`alloc`]), the
//! link databases ([`links`]), an open-loop load generator ([`load`]) and the click stream
//! ([`clicks`]).

pub mod alloc;
pub mod clicks;
pub mod http;
pub mod links;
pub mod load;
