//! The running proxy: generations, worker threads and the control thread.

pub mod control;
pub mod generation;
pub mod timer;
pub mod token;
pub mod worker;
