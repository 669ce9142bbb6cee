/* map.h: a string-keyed hash map (open addressing, linear probing, backward-shift delete),
 * seeded per map with SipHash-1-3 so that user-chosen ids cannot force collisions.
 * It never owns keys or values: a key must stay valid while its entry is in the map
 * (usually the key lives inside the value). */
#ifndef VS_COMMON_MAP_H
#define VS_COMMON_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vs_map vs_map_t;

/* Returns a new empty map; free with vs_map_free (which frees neither keys nor values). */
vs_map_t *vs_map_new(void);
void vs_map_free(vs_map_t *m);
/* Returns the value for key, or NULL. */
void *vs_map_get(const vs_map_t *m, const char *key, size_t len);
/* Inserts or replaces; key is borrowed (see above). Returns the previous value or NULL. */
void *vs_map_put(vs_map_t *m, const char *key, size_t len, void *val);
/* Removes key; returns its value or NULL. */
void *vs_map_del(vs_map_t *m, const char *key, size_t len);
size_t vs_map_count(const vs_map_t *m);
/* Calls fn for every entry; fn must not modify the map. */
void vs_map_each(const vs_map_t *m, void (*fn)(void *val, void *ud), void *ud);

uint64_t vs_siphash13(const uint8_t key[16], const void *data, size_t len);

#endif
