//! One integration-test binary (faster to link than one per file). Each module is a stage.
mod common;
mod crash;
mod embed;
mod lifecycle;
mod search;
mod props;
mod cli;
