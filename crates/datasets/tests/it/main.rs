//! Integration tests of latent-datasets (one binary to keep link time down).

mod batching;
mod full_data;
mod fuzz;
mod hub;
mod malformed;
mod samples;
mod synthetic;
