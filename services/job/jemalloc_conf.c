/* jemalloc tuning for bok-job-service (linked only when built with
 * BOK_JEMALLOC; jemalloc reads this symbol at start-up; MALLOC_CONF in the
 * environment still overrides it).
 *
 * An upload allocates a ~40 KB buffer per rows-topic message on a gRPC
 * thread and librdkafka frees it on a broker thread, ~500 MB/s; gRPC reads
 * into fresh slices and librdkafka builds and compresses message sets in
 * fresh buffers at the same rate. With jemalloc's defaults (10 s decay, 8
 * arenas on 2 cores) freed pages stayed resident, so RSS followed the
 * upload size: 187 MB for a 1 GB upload, 322 MB for 2 GB. Returning them at
 * once (dirty_decay_ms:0) kept the peak flat but faulted every buffer in
 * again: page faults and madvise were ~20 % of the service's CPU.
 *
 * One arena with a 200 ms decay keeps both: the threads reuse each other's
 * freed pages (with one arena per thread group, each arena held its own
 * 200 ms of freed pages: 52-59 MB at a 251 MB upload), and what is freed is
 * returned within a fraction of a second by the background thread.
 * Measured (docs/PERFORMANCE.md, "Job service: one arena"): -30 % CPU per
 * row, peak private memory 36-50 MB at a 251 MB upload. */
const char *malloc_conf = "background_thread:true,narenas:1,dirty_decay_ms:200,muzzy_decay_ms:0";
