/* jemalloc tuning for bok-job-service (linked only when built with
 * BOK_JEMALLOC; jemalloc reads this symbol at start-up; MALLOC_CONF in the
 * environment still overrides it).
 *
 * An upload allocates a ~40 KB buffer per rows-topic message on its thread
 * and librdkafka frees it on a broker thread, ~500 MB/s. With jemalloc's
 * default 10 s decay those freed pages stayed resident, so RSS followed the
 * upload size: 187 MB for a 1 GB upload, 322 MB for 2 GB. Returning them at
 * once keeps the peak flat (86 MB for both) for ~0.3 CPU s per million rows. */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:0,muzzy_decay_ms:0";
