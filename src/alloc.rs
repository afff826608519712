//! The process-wide allocator, shared by `tollgate` and the benchmark's passthrough baseline so
//! their comparison is like for like.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
