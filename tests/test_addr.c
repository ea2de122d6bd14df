/*
 * test_addr - addr_format writes exactly what glibc's inet_ntop writes
 * (edge cases and a million seeded random addresses, biased towards runs of
 * zero groups), and addr_canonical's accepted and refused inputs.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static void
same_as_ntop(int family, const unsigned char *bin)
{
	char want[INET6_ADDRSTRLEN], got[INET6_ADDRSTRLEN];

	cr_assert_not_null(inet_ntop(family, bin, want, sizeof(want)));
	cr_assert_eq(addr_format(family, bin, got, sizeof(got)), 0);
	cr_assert_str_eq(got, want);
}

Test(addr, format_edge_cases_like_inet_ntop)
{
	static const char *const v6[] = {
		"::", "::1", "1::", "::2:3", "::ffff:1.2.3.4", "::1.2.3.4", "::ffff:0:1.2.3.4",
		"1:0:0:2:0:0:0:3", "1:0:0:0:2:0:0:3", "1:0:2:0:3:0:4:0", "0:1:0:0:0:0:0:0",
		"2001:db8::", "2001:db8::1", "fe80::1:0:0:1", "1:2:3:4:5:6:7:8", "ffff::",
		"::ffff:0:0", "0:0:0:0:0:1:0:0", "1:2:3:4:5:6:0:0", "0:0:1::", "::fffe:1.2.3.4",
		"::ffff", "::ffff:1", "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
	};
	unsigned char bin[16];

	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		cr_assert_eq(inet_pton(AF_INET6, v6[i], bin), 1, "%s", v6[i]);
		same_as_ntop(AF_INET6, bin);
	}
	for (unsigned v = 0; v < 256; v++) {
		unsigned char b4[4] = { (unsigned char)v, 0, (unsigned char)(255 - v), 9 };
		same_as_ntop(AF_INET, b4);
	}
}

Test(addr, format_random_like_inet_ntop)
{
	uint64_t x = 88172645463325252ULL;   /* xorshift64, fixed seed */
	unsigned char bin[16];

	for (int n = 0; n < 1000000; n++) {
		for (int i = 0; i < 16; i += 2) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			/* half the groups zero, some small: runs and ties of runs */
			if (x & 1) {
				bin[i] = bin[i + 1] = 0;
			} else {
				bin[i] = (x & 2) ? 0 : (unsigned char)(x >> 8);
				bin[i + 1] = (unsigned char)(x >> 16);
			}
		}
		same_as_ntop(AF_INET6, bin);
		same_as_ntop(AF_INET, bin);
	}
}

Test(addr, format_refuses_small_buffer)
{
	unsigned char b4[4] = { 192, 0, 2, 1 };
	char out[16];

	/* "192.0.2.1" is 9 bytes and its NUL */
	cr_assert_eq(addr_format(AF_INET, b4, out, 9), -1);
	cr_assert_eq(addr_format(AF_INET, b4, out, 10), 0);
	cr_assert_str_eq(out, "192.0.2.1");
}

Test(addr, canonical)
{
	char out[64];

	cr_assert_eq(addr_canonical("2001:DB8:0:0::1", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "2001:db8::1");
	cr_assert_eq(addr_canonical("192.0.2.77/24", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "192.0.2.0/24");
	cr_assert_eq(addr_canonical("2001:db8:1:2:3::9/64", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "2001:db8:1:2::/64");
	cr_assert_eq(addr_canonical("192.0.2.1/32", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "192.0.2.1");
	cr_assert_eq(addr_canonical("192.0.2.01", out, sizeof(out)), -1);
	cr_assert_eq(addr_canonical("192.0.2.1/33", out, sizeof(out)), -1);
	cr_assert_eq(addr_canonical("fe80::1%eth0", out, sizeof(out)), -1);
	cr_assert_eq(addr_canonical("192.0.2.1 ", out, sizeof(out)), -1);
	cr_assert_eq(addr_is_ip("::ffff:192.0.2.1"), true);
	cr_assert_eq(addr_is_ip("x"), false);
}
