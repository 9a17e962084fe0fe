//! Sans-IO messenger state machines.
