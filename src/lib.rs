//! 邻里 linli — the county's urban grassroots Party-building and community-governance
//! platform. The binary is a thin wrapper around [`cli::run`]; everything lives here.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod geo;
pub mod housekeeping;
pub mod ident;
pub mod logging;
pub mod open311;
pub mod openapi;
pub mod people;
pub mod privacy;
pub mod registers;
pub mod tree;
pub mod web;
