/* jemalloc tuning for bok-worker (linked only when built with BOK_JEMALLOC;
 * jemalloc reads this symbol at start-up; MALLOC_CONF in the environment
 * still overrides it).
 *
 * The worker allocates small objects (events, headers) by the million; an
 * immediate decay doubled its CPU (purging slabs it needs again a moment
 * later). A decay, purged by jemalloc's background thread, bounds what freed
 * memory stays resident by time rather than by file size: what a lane frees
 * in that time (~60 MB/s of events and headers at full speed) stays. 300 ms,
 * not the 1 s it was: with 10,000-row batches the worker's peak at a 64 MB
 * upload was 63-73 MB against a 64 MB budget; at 300-500 ms it is ~58, for
 * no CPU measured (docs/PERFORMANCE.md "Larger transactions"). */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:300,muzzy_decay_ms:0";
