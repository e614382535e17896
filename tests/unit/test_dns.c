/* SRV wire format: the query ferry sends and the answers it accepts (and refuses). */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

/* A response builder: header, the question, then records appended by the helpers below. */
struct msg {
    uint8_t b[2048];
    size_t n;
};

static void put16(struct msg *m, uint16_t v)
{
    m->b[m->n++] = (uint8_t)(v >> 8);
    m->b[m->n++] = (uint8_t)v;
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, (uint16_t)(v >> 16));
    put16(m, (uint16_t)v);
}

static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        m->b[m->n++] = (uint8_t)l;
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    m->b[m->n++] = 0;
}

static void header(struct msg *m, uint16_t id, int rcode, int an, int ar)
{
    m->n = 0;
    put16(m, id);
    put16(m, (uint16_t)(0x8180 | rcode));   /* QR RD RA */
    put16(m, 1);
    put16(m, (uint16_t)an);
    put16(m, 0);
    put16(m, (uint16_t)ar);
    put_name(m, "_api._tcp.svc.test");
    put16(m, 33);
    put16(m, 1);
}

/* An SRV record whose owner is a pointer to the question name (offset 12). */
static void srv(struct msg *m, uint16_t prio, uint16_t weight, uint16_t port, const char *target)
{
    put16(m, 0xC00C);
    put16(m, 33);
    put16(m, 1);
    put32(m, 30);
    size_t len_at = m->n;
    put16(m, 0);
    size_t start = m->n;
    put16(m, prio);
    put16(m, weight);
    put16(m, port);
    put_name(m, target);
    m->b[len_at] = (uint8_t)((m->n - start) >> 8);
    m->b[len_at + 1] = (uint8_t)(m->n - start);
}

static void a_rec(struct msg *m, const char *name, const char *ip)
{
    put_name(m, name);
    put16(m, 1);
    put16(m, 1);
    put32(m, 7);
    put16(m, 4);
    inet_pton(AF_INET, ip, m->b + m->n);
    m->n += 4;
}

START_TEST(test_query)
{
    uint8_t q[512];
    size_t n = dns_srv_query(q, sizeof q, 0xBEEF, "_api._tcp.svc.test");
    ck_assert_uint_eq(n, 12 + 20 + 4);
    ck_assert_uint_eq(q[0], 0xBE);
    ck_assert_uint_eq(q[1], 0xEF);
    ck_assert_uint_eq(q[5], 1);                         /* one question */
    ck_assert_int_eq(memcmp(q + 12, "\4_api\4_tcp\3svc\4test\0", 20), 0);
    ck_assert_uint_eq(q[n - 3], 33);                    /* SRV */
    ck_assert_uint_eq(dns_srv_query(q, sizeof q, 1, "a..b"), 0);
    ck_assert_uint_eq(dns_srv_query(q, sizeof q, 1, ""), 0);
    ck_assert_uint_eq(dns_srv_query(q, 20, 1, "_api._tcp.svc.test"), 0);
}
END_TEST

START_TEST(test_parse)
{
    static struct msg m;
    static struct dns_srv_answer a;
    header(&m, 7, 0, 3, 1);
    srv(&m, 5, 10, 8080, "backup.test");
    srv(&m, 1, 10, 9001, "t1.test");
    srv(&m, 1, 0, 9002, "t2.test");
    a_rec(&m, "t1.test", "192.0.2.1");
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 7, &a), 0);
    ck_assert_int_eq(a.rcode, 0);
    ck_assert_uint_eq(a.nrec, 2);                       /* priority 1 only */
    ck_assert_str_eq(a.rec[0].target, "t1.test");
    ck_assert_uint_eq(a.rec[0].port, 9001);
    ck_assert_uint_eq(a.rec[0].weight, 10);
    ck_assert_uint_eq(a.rec[0].ttl, 30);
    ck_assert_uint_eq(a.rec[1].port, 9002);
    ck_assert_uint_eq(a.nadd, 1);
    ck_assert_str_eq(a.add[0].name, "t1.test");
    ck_assert_uint_eq(a.add[0].ttl, 7);
    /* The wrong id, a query instead of a response, a cut message: refused. */
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 8, &a), -1);
    for (size_t cut = 0; cut < m.n; cut++)
        ck_assert_int_eq(dns_srv_parse(m.b, cut, 7, &a), -1);
    m.b[2] &= 0x7F;
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 7, &a), -1);
}
END_TEST

START_TEST(test_rcode_and_loops)
{
    static struct msg m;
    static struct dns_srv_answer a;
    header(&m, 9, 3, 0, 0);
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 9, &a), 0);
    ck_assert_int_eq(a.rcode, 3);
    ck_assert_uint_eq(a.nrec, 0);
    /* A record whose owner name points at itself: a loop, refused, not followed forever. */
    header(&m, 9, 0, 1, 0);
    size_t at = m.n;
    put16(&m, (uint16_t)(0xC000 | at));
    put16(&m, 33);
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 9, &a), -1);
    /* "." as the target: the service is not offered there. */
    header(&m, 9, 0, 1, 0);
    srv(&m, 0, 1, 80, "");
    ck_assert_int_eq(dns_srv_parse(m.b, m.n, 9, &a), 0);
    ck_assert_uint_eq(a.nrec, 0);
}
END_TEST

START_TEST(test_fuzzish)
{
    /* Random bytes after a valid header never crash the parser (ASan watches the reads). */
    static struct msg m;
    static struct dns_srv_answer a;
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        header(&m, 3, 0, 4, 4);
        size_t extra = (size_t)(rand_r(&seed) % 200);
        for (size_t i = 0; i < extra; i++)
            m.b[m.n++] = (uint8_t)rand_r(&seed);
        (void)dns_srv_parse(m.b, m.n, 3, &a);
    }
}
END_TEST

static Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("srv");
    tcase_add_test(tc, test_query);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_rcode_and_loops);
    tcase_add_test(tc, test_fuzzish);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
