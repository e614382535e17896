/* ascii — case-insensitive comparison of header names against lowercase literals, eight
 * bytes at a time. Field names are compared on every request (framing, hop-by-hop, the
 * fields ferry writes itself); a byte loop with a lowercase step per byte showed up in the
 * profile. */
#ifndef FERRY_ASCII_H
#define FERRY_ASCII_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ASCII_ONES8 0x0101010101010101ULL

/* <x> with its bytes 'A'..'Z' lowered, others unchanged (bytes >= 0x80 included). */
static inline uint64_t ascii_lower8(uint64_t x)
{
    uint64_t h = x & (ASCII_ONES8 * 0x7f);
    uint64_t ge_a = h + ASCII_ONES8 * (0x80 - 'A');
    uint64_t gt_z = h + ASCII_ONES8 * (0x80 - 'Z' - 1);
    return x | (((ge_a & ~gt_z & ~x) & (ASCII_ONES8 * 0x80)) >> 2);
}

static inline unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static inline uint64_t ascii_load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* True when the <n> bytes of <name> equal the lowercase <lower> (at least <n> bytes)
 * ignoring ASCII case. */
static inline int ascii_eq_lower(const char *name, const char *lower, size_t n)
{
    if (n >= 8) {
        size_t i;
        for (i = 0; i + 8 < n; i += 8)
            if (ascii_lower8(ascii_load8(name + i)) != ascii_load8(lower + i))
                return 0;
        /* (cppcheck pairs lengths and literals of different call sites: <lower> has n bytes) */
        /* cppcheck-suppress pointerOutOfBoundsCond */
        return ascii_lower8(ascii_load8(name + n - 8)) == ascii_load8(lower + n - 8);
    }
    if (n >= 4) {
        uint32_t a, b, c, d;
        memcpy(&a, name, 4);
        memcpy(&b, lower, 4);
        memcpy(&c, name + n - 4, 4);
        /* cppcheck-suppress pointerOutOfBoundsCond */
        memcpy(&d, lower + n - 4, 4);
        return (uint32_t)ascii_lower8(a) == b && (uint32_t)ascii_lower8(c) == d;
    }
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)name[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

#endif
