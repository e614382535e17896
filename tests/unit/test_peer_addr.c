/* peer_addr_set: a client's address and its text form, made once per connection. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

static void check_v4(const char *text)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(8080);
    ck_assert_int_eq(inet_pton(AF_INET, text, &sin.sin_addr), 1);
    struct peer_addr p;
    memset(&p, 0x55, sizeof p);   /* no reliance on zeroed memory */
    peer_addr_set(&p, (const struct sockaddr *)&sin);
    ck_assert_str_eq(p.ip, text);
    ck_assert_int_eq(p.addr.sa.sa_family, AF_INET);
    ck_assert_int_eq(ntohs(p.addr.in.sin_port), 8080);
}

START_TEST(test_ipv4)
{
    static const char *const cases[] = {
        "0.0.0.0", "127.0.0.1", "255.255.255.255", "10.0.100.9", "1.22.133.4", "99.100.101.199",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_v4(cases[i]);
    /* Every octet value in every position. */
    char buf[INET_ADDRSTRLEN];
    for (unsigned v = 0; v < 256; v++) {
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", v, 255 - v, v / 2, (v * 7) & 255);
        check_v4(buf);
    }
}
END_TEST

START_TEST(test_ipv6)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr), 1);
    struct peer_addr p;
    peer_addr_set(&p, (const struct sockaddr *)&sin6);
    ck_assert_str_eq(p.ip, "2001:db8::1");
    ck_assert_int_eq(ntohs(p.addr.in6.sin6_port), 443);
}
END_TEST

static Suite *peer_addr_suite(void)
{
    Suite *s = suite_create("peer_addr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ipv4);
    tcase_add_test(tc, test_ipv6);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(peer_addr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
