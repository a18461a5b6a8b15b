//! Fixture and property tests.
