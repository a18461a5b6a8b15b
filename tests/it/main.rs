//! One integration-test binary (faster to link than one per file). Each module is a stage.
mod ask;
mod audit;
mod cli;
mod common;
mod crash;
mod e5;
mod embed;
mod lifecycle;
mod pii_eval;
mod privacy;
mod props;
mod search;
mod themes;
