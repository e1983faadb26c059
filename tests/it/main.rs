//! The one integration test binary. Every test in the `both!` macro runs twice: against a
//! fresh SQLite file and against a fresh PostgreSQL database.

mod harness;

mod accounts;
mod api;
mod assurance;
mod audit;
mod auth;
mod cache;
mod cases;
mod deferred;
mod durable;
mod geo_api;
mod group;
mod h5;
mod jobs;
mod open311;
mod pages;
mod people;
mod process;
mod registers;
mod reveal;
mod rollups;
mod scale;
mod scopes;
mod service;
mod tree;
mod workflow;
