//! The messenger service.
