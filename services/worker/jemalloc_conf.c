/* jemalloc tuning for bok-worker (linked only when built with BOK_JEMALLOC;
 * jemalloc reads this symbol at start-up; MALLOC_CONF in the environment
 * still overrides it).
 *
 * The worker allocates small objects (events, headers) by the million; an
 * immediate decay doubled its CPU (purging slabs it needs again a moment
 * later). One second, purged by jemalloc's background thread, bounds what
 * freed memory stays resident by time rather than by file size. */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
