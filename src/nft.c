/*
 * nft - nftables through netlink (libnftnl + libmnl).  See nft.h.
 *
 * Layout (one transaction, so a half-built table never exists):
 *   table inet <table>
 *     set <set_v4> { type ipv4_addr; flags interval, timeout; }      addresses
 *     set <set_v6> { type ipv6_addr; flags interval, timeout; }
 *     set <set_v4>_net { type ipv4_addr; flags interval, timeout; }  prefixes
 *     set <set_v6>_net { type ipv6_addr; flags interval, timeout; }
 *     chain <chain> { type filter hook input priority -10; policy accept;
 *       meta nfproto ipv4 ip saddr @<set> [tcp dport P] drop   (per set, port)
 *       meta nfproto ipv6 ip6 saddr @<set> [tcp dport P] drop }
 * The chain's rules are ours alone: setup flushes and re-adds them in the
 * same transaction, so a second start never duplicates them.  Set elements
 * are never flushed.
 *
 * Elements are intervals (the sets hold prefixes): [start, end) where end
 * carries NFT_SET_ELEM_INTERVAL_END.  A ban of an element that exists is
 * sent as delete + add in one transaction, so the new timeout wins.  The
 * kernel refuses an interval that overlaps another of its set (EEXIST),
 * and jails ban an address and its /64 independently, each with its own
 * time: so addresses and prefixes live in sets of their own, and a
 * packet is dropped when either holds its source.
 *
 * Batches: elements are packed many to a message; a transaction is sent
 * when its buffer fills; every message asks for an ACK and every ACK is
 * read.  A failed message is retried element by element so the error names
 * the element it concerns.
 *
 * Memory: struct nft owns the socket, the send buffer and the queue of
 * pending operations (copied addresses).
 */
#include "nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define TX_BUF_SIZE (512 * 1024)
#define ELEMS_PER_MSG 256
#define TYPE_IPADDR 7               /* nft's datatype ids, shown as ipv4_addr */
#define TYPE_IP6ADDR 8
#define RULE_COMMENT "mailjail"

/* Linux >= 6.3: delete an element, no error if it is not there. */
#ifndef NFT_MSG_DESTROYSETELEM
#define NFT_MSG_DESTROYSETELEM 30
#endif

enum op_kind { OP_DESTROY, OP_ADD, OP_DEL };

struct nft_op {
	enum op_kind kind;
	int family;                     /* AF_INET / AF_INET6 */
	unsigned char start[16], end[16];
	bool has_end;                   /* false only for a range to the top */
	bool prefix;                    /* shorter than an address: the _net set */
	uint64_t timeout_ms;
	char text[INET6_ADDRSTRLEN + 4];
};

struct nft {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *table, *chain;
	char *set[2][2];                 /* [AF_INET6?][prefix?] */
	uint16_t ports[NFT_PORTS_MAX];
	size_t nports;
	struct nft_op *ops;              /* destroys/deletes, then adds */
	size_t nops, cap;
	struct nft_op *adds;
	size_t nadds, adds_cap;
	bool no_destroy;                 /* kernel < 6.3 */
	char *buf;
};

/* ---- addresses ---- */

/* parse_target - address or prefix into an interval; -1 if not valid */
static int
parse_target(const char *target, struct nft_op *op)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(target, '/');
	size_t hl = slash ? (size_t)(slash - target) : strlen(target);
	int max, len, carry, bytes;

	memset(op, 0, sizeof(*op));
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, target, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, op->start) == 1) {
		op->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, op->start) == 1) {
		op->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	len = max;
	if (slash) {
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return -1;
		for (len = 0; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			len = len * 10 + (*p - '0');
		}
		if (len < 1 || len > max)
			return -1;
	}
	bytes = max / 8;
	for (int bit = len; bit < max; bit++)
		op->start[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	/* end = start + 2^(max - len): add 1 at bit len-1, counted from the top */
	memcpy(op->end, op->start, (size_t)bytes);
	{
		int byte = (len - 1) / 8;
		unsigned add = 0x80u >> ((len - 1) % 8);
		for (; byte >= 0 && add; byte--) {
			unsigned v = op->end[byte] + add;
			op->end[byte] = (unsigned char)v;
			add = v >> 8;
		}
		carry = add != 0;
	}
	op->has_end = !carry;
	op->prefix = len < max;
	snprintf(op->text, sizeof(op->text), "%s", target);
	return 0;
}

/* set_of - the set an element of family (and a prefix or not) goes in */
static const char *
set_of(const struct nft *n, int family, bool prefix)
{
	return n->set[family == AF_INET6][prefix];
}

/* ---- netlink plumbing ---- */

struct ack_state {
	uint32_t first_seq, last_seq;
	int *errors;                    /* per seq - first_seq */
	size_t acks;
};

static int
ack_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

/* read_acks - every ACK of seqs [first, last]; errors[i] gets -errno or 0 */
static int
read_acks(struct nft *n, struct ack_state *st)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	size_t want = st->last_seq - st->first_seq + 1;

	while (st->acks < want) {
		ssize_t len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf));
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int remain = (int)len;

		if (len < 0) {
			log_warn("nft: reading netlink acknowledgements");
			return -1;
		}
		for (; mnl_nlmsg_ok(nlh, remain); nlh = mnl_nlmsg_next(nlh, &remain)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				uint32_t seq = nlh->nlmsg_seq;
				if (seq >= st->first_seq && seq <= st->last_seq) {
					st->errors[seq - st->first_seq] = e->error;
					st->acks++;
				}
			} else {
				(void)ack_cb(nlh, NULL);
			}
		}
	}
	return 0;
}

/* batch state for building one transaction */
struct tx {
	struct nft *n;
	struct mnl_nlmsg_batch *b;
	uint32_t first_seq;
};

static void
tx_begin(struct tx *tx, struct nft *n)
{
	tx->n = n;
	tx->b = mnl_nlmsg_batch_start(n->buf, TX_BUF_SIZE);
	nftnl_batch_begin(mnl_nlmsg_batch_current(tx->b), n->seq++);
	mnl_nlmsg_batch_next(tx->b);
	tx->first_seq = n->seq;
}

static struct nlmsghdr *
tx_msg(struct tx *tx, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(tx->b), type, NFPROTO_INET,
	    flags | NLM_F_ACK, tx->n->seq++);
}

/* tx_room - is there space for one more message of about len bytes? */
static bool
tx_room(struct tx *tx, size_t len)
{
	return mnl_nlmsg_batch_size(tx->b) + len + 256 < TX_BUF_SIZE;
}

/*
 * tx_commit - end, send, read every ACK.  errors (may be NULL) receives one
 * result per message.  Returns 0 if all succeeded, -1 otherwise.
 */
static int
tx_commit(struct tx *tx, int **errors_out, size_t *nmsgs)
{
	struct nft *n = tx->n;
	struct ack_state st;
	int rc = 0;
	uint32_t last = n->seq - 1;

	nftnl_batch_end(mnl_nlmsg_batch_current(tx->b), n->seq++);
	mnl_nlmsg_batch_next(tx->b);
	if (errors_out)
		*errors_out = NULL;
	if (last < tx->first_seq) {
		mnl_nlmsg_batch_stop(tx->b);
		if (nmsgs)
			*nmsgs = 0;
		return 0;
	}
	memset(&st, 0, sizeof(st));
	st.first_seq = tx->first_seq;
	st.last_seq = last;
	st.errors = calloc(last - tx->first_seq + 1, sizeof(int));
	if (st.errors == NULL) {
		mnl_nlmsg_batch_stop(tx->b);
		return -1;
	}
	if (mnl_socket_sendto(n->nl, mnl_nlmsg_batch_head(tx->b),
	    mnl_nlmsg_batch_size(tx->b)) < 0) {
		log_warn("nft: sending a netlink batch");
		rc = -1;
	} else if (read_acks(n, &st) != 0) {
		rc = -1;
	} else {
		for (uint32_t i = 0; i <= last - tx->first_seq; i++)
			if (st.errors[i] != 0)
				rc = -1;
	}
	mnl_nlmsg_batch_stop(tx->b);
	if (nmsgs)
		*nmsgs = last - tx->first_seq + 1;
	if (errors_out)
		*errors_out = st.errors;
	else
		free(st.errors);
	return rc;
}

/* ---- layout ---- */

static struct nftnl_set *
layout_set(struct nft *n, const char *name, int family, uint32_t id)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s == NULL)
		return NULL;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, family == AF_INET ? TYPE_IPADDR : TYPE_IP6ADDR);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, family == AF_INET ? 4 : 16);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL | NFT_SET_TIMEOUT);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	return s;
}

static int
add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (e == NULL)
		return -1;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static struct nftnl_expr *
expr_meta(uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *
expr_cmp(const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return e;
}

static struct nftnl_expr *
expr_payload(uint32_t base, uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
	return e;
}

/* drop_rule - "meta nfproto F saddr @set [meta l4proto tcp th dport P] drop" */
static struct nftnl_rule *
drop_rule(struct nft *n, int family, const char *set, uint32_t set_id, int port)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e;
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
	uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
	uint8_t tcp = IPPROTO_TCP;
	uint16_t dport = htons((uint16_t)port);
	int rc = 0;

	if (r == NULL || ud == NULL)
		goto fail;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, n->chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	rc |= add_expr(r, expr_meta(NFT_META_NFPROTO));
	rc |= add_expr(r, expr_cmp(&proto, 1));
	rc |= add_expr(r, expr_payload(NFT_PAYLOAD_NETWORK_HEADER,
	    family == AF_INET ? 12 : 8, family == AF_INET ? 4 : 16));
	if ((e = nftnl_expr_alloc("lookup")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	}
	rc |= add_expr(r, e);
	if (port > 0) {
		rc |= add_expr(r, expr_meta(NFT_META_L4PROTO));
		rc |= add_expr(r, expr_cmp(&tcp, 1));
		rc |= add_expr(r, expr_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2));
		rc |= add_expr(r, expr_cmp(&dport, 2));
	}
	if ((e = nftnl_expr_alloc("immediate")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
	}
	rc |= add_expr(r, e);
	if (rc != 0 || !nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, RULE_COMMENT))
		goto fail;
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
	    nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
	return r;
fail:
	nftnl_udata_buf_free(ud);
	nftnl_rule_free(r);
	return NULL;
}

/* ---- reading the kernel's layout ---- */

struct get_result {
	bool found;
	uint32_t key_type, flags, hooknum;
	char type[32];
};

static int
set_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_result *g = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (s == NULL)
		return MNL_CB_ERROR;
	if (nftnl_set_nlmsg_parse(nlh, s) == 0) {
		g->found = true;
		g->key_type = nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE);
		g->flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int
chain_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_result *g = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c == NULL)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, c) == 0) {
		const char *type = nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE);
		g->found = true;
		g->hooknum = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM) ?
		    nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM) : UINT32_MAX;
		snprintf(g->type, sizeof(g->type), "%s", type ? type : "");
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int
table_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_result *g = data;

	(void)nlh;
	g->found = true;
	return MNL_CB_OK;
}

/* get_object - one GET request; 1 found, 0 ENOENT, -1 error */
static int
get_object(struct nft *n, uint16_t type, const char *name, mnl_cb_t cb, struct get_result *g)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t seq = n->seq++;
	ssize_t len;
	int rc;

	memset(g, 0, sizeof(*g));
	nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, NLM_F_ACK, seq);
	if (type == NFT_MSG_GETTABLE) {
		struct nftnl_table *t = nftnl_table_alloc();
		if (t == NULL)
			return -1;
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
		nftnl_table_nlmsg_build_payload(nlh, t);
		nftnl_table_free(t);
	} else if (type == NFT_MSG_GETSET) {
		struct nftnl_set *s = nftnl_set_alloc();
		if (s == NULL)
			return -1;
		nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
	} else {
		struct nftnl_chain *c = nftnl_chain_alloc();
		if (c == NULL)
			return -1;
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->table);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
	}
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		if ((len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf))) < 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)len, seq, n->portid, cb, g);
		if (rc == MNL_CB_STOP)
			return g->found ? 1 : 0;
		if (rc < 0)
			return errno == ENOENT ? 0 : -1;
	}
}

int
nft_check(struct nft *n)
{
	struct get_result g;
	int rc;

	if ((rc = get_object(n, NFT_MSG_GETTABLE, NULL, table_info_cb, &g)) <= 0)
		return rc;
	for (int i = 0; i < 4; i++)
		if ((rc = get_object(n, NFT_MSG_GETSET, n->set[i / 2][i % 2], set_info_cb,
		    &g)) <= 0)
			return rc;
	if ((rc = get_object(n, NFT_MSG_GETCHAIN, n->chain, chain_info_cb, &g)) <= 0)
		return rc;
	return 1;
}

/* check_layout - what exists must be ours; err says what is foreign */
static int
check_layout(struct nft *n, bool *have_table, char *err, size_t errlen)
{
	struct get_result g;
	int rc;

	if ((rc = get_object(n, NFT_MSG_GETTABLE, NULL, table_info_cb, &g)) < 0) {
		snprintf(err, errlen, "cannot read table inet %s: %s", n->table, strerror(errno));
		return -1;
	}
	*have_table = rc == 1;
	if (!*have_table)
		return 0;
	for (int i = 0; i < 4; i++) {
		const char *set = n->set[i / 2][i % 2];
		bool v6 = i / 2;

		if ((rc = get_object(n, NFT_MSG_GETSET, set, set_info_cb, &g)) < 0) {
			snprintf(err, errlen, "cannot read set %s: %s", set, strerror(errno));
			return -1;
		}
		if (rc == 1 && (g.key_type != (v6 ? TYPE_IP6ADDR : TYPE_IPADDR) ||
		    (g.flags & (NFT_SET_INTERVAL | NFT_SET_TIMEOUT)) !=
		    (NFT_SET_INTERVAL | NFT_SET_TIMEOUT))) {
			snprintf(err, errlen, "table inet %s has a set %s that is not ours (type "
			    "%u, flags 0x%x; expected %s with flags interval,timeout): refusing to "
			    "touch it", n->table, set, g.key_type, g.flags,
			    v6 ? "ipv6_addr" : "ipv4_addr");
			return -1;
		}
	}
	if ((rc = get_object(n, NFT_MSG_GETCHAIN, n->chain, chain_info_cb, &g)) < 0) {
		snprintf(err, errlen, "cannot read chain %s: %s", n->chain, strerror(errno));
		return -1;
	}
	if (rc == 1 && (g.hooknum != NF_INET_LOCAL_IN || strcmp(g.type, "filter") != 0)) {
		snprintf(err, errlen, "table inet %s has a chain %s that is not ours (not a "
		    "filter chain on the input hook): refusing to touch it", n->table, n->chain);
		return -1;
	}
	return 0;
}

int
nft_setup(struct nft *n, char *err, size_t errlen)
{
	struct nftnl_table *t = NULL;
	struct nftnl_set *sets[4] = { NULL, NULL, NULL, NULL };
	struct nftnl_chain *c = NULL;
	struct nftnl_rule *fl = NULL;
	struct tx tx;
	bool have_table;
	int rc = -1, *errors = NULL;
	size_t nmsgs = 0;

	if (check_layout(n, &have_table, err, errlen) != 0)
		return -1;
	(void)have_table;
	t = nftnl_table_alloc();
	/* Set i (id i + 1 in the transaction): family i / 2, prefixes if i % 2. */
	for (int i = 0; i < 4; i++)
		sets[i] = layout_set(n, n->set[i / 2][i % 2], i / 2 ? AF_INET6 : AF_INET,
		    (uint32_t)i + 1);
	c = nftnl_chain_alloc();
	fl = nftnl_rule_alloc();
	if (t == NULL || !sets[0] || !sets[1] || !sets[2] || !sets[3] || c == NULL ||
	    fl == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, n->chain);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -10);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nftnl_rule_set_str(fl, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(fl, NFTNL_RULE_CHAIN, n->chain);
	nftnl_rule_set_u32(fl, NFTNL_RULE_FAMILY, NFPROTO_INET);

	/* NLM_F_CREATE without NLM_F_EXCL: existing objects (and the elements
	 * in existing sets) stay as they are. */
	tx_begin(&tx, n);
	nftnl_table_nlmsg_build_payload(tx_msg(&tx, NFT_MSG_NEWTABLE, NLM_F_CREATE), t);
	mnl_nlmsg_batch_next(tx.b);
	for (int i = 0; i < 4; i++) {
		nftnl_set_nlmsg_build_payload(tx_msg(&tx, NFT_MSG_NEWSET, NLM_F_CREATE), sets[i]);
		mnl_nlmsg_batch_next(tx.b);
	}
	nftnl_chain_nlmsg_build_payload(tx_msg(&tx, NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
	mnl_nlmsg_batch_next(tx.b);
	/* Our chain's rules are ours alone: replace them all, atomically. */
	nftnl_rule_nlmsg_build_payload(tx_msg(&tx, NFT_MSG_DELRULE, 0), fl);
	mnl_nlmsg_batch_next(tx.b);
	for (int i = 0; i < 4; i++) {
		size_t nrules = n->nports ? n->nports : 1;
		for (size_t p = 0; p < nrules; p++) {
			struct nftnl_rule *r = drop_rule(n, i / 2 ? AF_INET6 : AF_INET,
			    n->set[i / 2][i % 2], (uint32_t)i + 1, n->nports ? n->ports[p] : 0);
			if (r == NULL) {
				snprintf(err, errlen, "out of memory");
				mnl_nlmsg_batch_stop(tx.b);
				goto out;
			}
			nftnl_rule_nlmsg_build_payload(tx_msg(&tx, NFT_MSG_NEWRULE,
			    NLM_F_CREATE | NLM_F_APPEND), r);
			mnl_nlmsg_batch_next(tx.b);
			nftnl_rule_free(r);
		}
	}
	if (tx_commit(&tx, &errors, &nmsgs) != 0) {
		int e = 0;
		for (size_t i = 0; errors && i < nmsgs && e == 0; i++)
			e = errors[i];
		snprintf(err, errlen, "creating table inet %s: %s", n->table,
		    e ? strerror(-e) : "netlink error");
		goto out;
	}
	rc = 0;
out:
	free(errors);
	nftnl_table_free(t);
	for (int i = 0; i < 4; i++)
		if (sets[i] != NULL)
			nftnl_set_free(sets[i]);
	nftnl_chain_free(c);
	nftnl_rule_free(fl);
	return rc;
}

/* set_names - the configured sets for addresses, and NAME_net beside each
 * for prefixes */
static int
set_names(struct nft *n, const struct nft_options *o)
{
	const char *base[2] = { o->set_v4 ? o->set_v4 : "banned_ipv4",
	    o->set_v6 ? o->set_v6 : "banned_ipv6" };

	for (int v6 = 0; v6 < 2; v6++) {
		size_t len = strlen(base[v6]) + sizeof(NFT_NET_SUFFIX);

		if ((n->set[v6][0] = strdup(base[v6])) == NULL ||
		    (n->set[v6][1] = malloc(len)) == NULL)
			return -1;
		snprintf(n->set[v6][1], len, "%s" NFT_NET_SUFFIX, base[v6]);
	}
	return 0;
}

int
nft_open(struct nft **out, const struct nft_options *o, char *err, size_t errlen)
{
	struct nft *n = calloc(1, sizeof(*n));
	int bufsize = 8 * 1024 * 1024;

	*out = NULL;
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n->table = strdup(o->table ? o->table : "mailjail");
	n->chain = strdup(o->chain ? o->chain : "input");
	n->buf = malloc(TX_BUF_SIZE);
	memcpy(n->ports, o->ports, sizeof(n->ports));
	n->nports = o->nports;
	if (!n->table || !n->chain || !n->buf || set_names(n, o) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((n->nl = mnl_socket_open(NETLINK_NETFILTER)) == NULL ||
	    mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	/* Big batches get big answers; as root, force the buffers past the
	 * sysctl limits (failure only means smaller buffers). */
	(void)setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVBUFFORCE, &bufsize,
	    sizeof(bufsize));
	(void)setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_SNDBUFFORCE, &bufsize,
	    sizeof(bufsize));
	n->portid = mnl_socket_get_portid(n->nl);
	n->seq = (uint32_t)time(NULL);
	if (nft_setup(n, err, errlen) != 0)
		goto fail;
	*out = n;
	return 0;
fail:
	nft_close(n);
	return -1;
}

void
nft_close(struct nft *n)
{
	if (n == NULL)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	free(n->table);
	for (int i = 0; i < 4; i++)
		free(n->set[i / 2][i % 2]);
	free(n->chain);
	free(n->ops);
	free(n->adds);
	free(n->buf);
	free(n);
}

static int
push_op(struct nft_op **v, size_t *n, size_t *cap, const struct nft_op *op)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct nft_op *nv = realloc(*v, c * sizeof(*nv));
		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *op;
	return 0;
}

int
nft_ban(struct nft *n, const char *target, uint64_t timeout_ms)
{
	struct nft_op op;

	if (parse_target(target, &op) != 0) {
		log_warnx("nft: \"%s\" is not an IP address or prefix: not sent to the kernel",
		    target);
		return -1;
	}
	/* Destroy first, so that a ban of an element still present (a recidive
	 * ban on top of a first one) takes the new, longer timeout. */
	op.kind = OP_DESTROY;
	if (!n->no_destroy && push_op(&n->ops, &n->nops, &n->cap, &op) != 0)
		return -1;
	op.kind = OP_ADD;
	op.timeout_ms = timeout_ms ? timeout_ms : 1;
	return push_op(&n->adds, &n->nadds, &n->adds_cap, &op);
}

int
nft_unban(struct nft *n, const char *target)
{
	struct nft_op op;
	size_t k = 0;

	if (parse_target(target, &op) != 0) {
		log_warnx("nft: \"%s\" is not an IP address or prefix: not sent to the kernel",
		    target);
		return -1;
	}
	/* a ban of the same target queued in this batch is cancelled */
	for (size_t i = 0; i < n->nadds; i++)
		if (strcmp(n->adds[i].text, op.text) != 0)
			n->adds[k++] = n->adds[i];
	n->nadds = k;
	op.kind = n->no_destroy ? OP_DEL : OP_DESTROY;
	return push_op(&n->ops, &n->nops, &n->cap, &op);
}

/* elem_add - the interval of op into set s */
static int
elem_add(struct nftnl_set *s, const struct nft_op *op)
{
	size_t alen = op->family == AF_INET ? 4 : 16;
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	if (e == NULL)
		return -1;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, op->start, (uint32_t)alen);
	if (op->kind == OP_ADD)
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, op->timeout_ms);
	nftnl_set_elem_add(s, e);
	if (!op->has_end)
		return 0;
	if ((e = nftnl_set_elem_alloc()) == NULL)
		return -1;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, op->end, (uint32_t)alen);
	nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
	nftnl_set_elem_add(s, e);
	return 0;
}

static uint16_t
op_msg_type(enum op_kind k)
{
	return k == OP_ADD ? NFT_MSG_NEWSETELEM :
	    k == OP_DESTROY ? NFT_MSG_DESTROYSETELEM : NFT_MSG_DELSETELEM;
}

/*
 * send_ops - ops[0..nops) as transactions of messages of up to per_msg
 * elements (same kind, family and set).  A transaction is all or nothing, so
 * when any message of it fails, failed[] is set for every op in it (with
 * the error of the failing message; deletes of absent elements are not
 * failures).  Returns -1 on a transport error.
 */
static int
send_ops(struct nft *n, struct nft_op *ops, size_t nops, size_t per_msg, int *failed)
{
	size_t i = 0;

	while (i < nops) {
		struct tx tx;
		size_t tx_first = i;
		int *errors = NULL, tx_err = 0;
		size_t nmsgs = 0;

		tx_begin(&tx, n);
		while (i < nops && tx_room(&tx, per_msg * 96)) {
			struct nftnl_set *s = nftnl_set_alloc();
			enum op_kind kind = ops[i].kind;
			int fam = ops[i].family;
			bool prefix = ops[i].prefix;
			size_t k = 0;

			if (s == NULL) {
				mnl_nlmsg_batch_stop(tx.b);
				return -1;
			}
			nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
			nftnl_set_set_str(s, NFTNL_SET_NAME, set_of(n, fam, prefix));
			nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
			while (i < nops && k < per_msg && ops[i].kind == kind &&
			    ops[i].family == fam && ops[i].prefix == prefix) {
				if (elem_add(s, &ops[i]) != 0) {
					nftnl_set_free(s);
					mnl_nlmsg_batch_stop(tx.b);
					return -1;
				}
				i++;
				k++;
			}
			nftnl_set_elems_nlmsg_build_payload(tx_msg(&tx, op_msg_type(kind),
			    kind == OP_ADD ? NLM_F_CREATE : 0), s);
			mnl_nlmsg_batch_next(tx.b);
			nftnl_set_free(s);
		}
		if (tx_commit(&tx, &errors, &nmsgs) != 0 && errors == NULL)
			return -1;
		for (size_t m = 0; m < nmsgs && tx_err == 0; m++)
			if (errors[m] != 0 && errors[m] != -ENOENT)
				tx_err = errors[m];
		/* ENOENT only matters for plain deletes: it aborted the rest. */
		for (size_t m = 0; m < nmsgs && tx_err == 0; m++)
			if (errors[m] == -ENOENT)
				tx_err = -ENOENT;
		free(errors);
		if (tx_err != 0)
			for (size_t k = tx_first; k < i; k++)
				failed[k] = tx_err;
	}
	return 0;
}

/* commit_list - send, then retry failures one element per transaction so
 * each error names its element */
static int
commit_list(struct nft *n, struct nft_op *ops, size_t nops)
{
	int *failed, rc = 0;

	if (nops == 0)
		return 0;
	if ((failed = calloc(nops, sizeof(*failed))) == NULL)
		return -1;
	if (send_ops(n, ops, nops, ELEMS_PER_MSG, failed) != 0) {
		free(failed);
		return -1;
	}
	for (size_t i = 0; i < nops; i++) {
		int one = 0;
		if (failed[i] == 0)
			continue;
		if (send_ops(n, &ops[i], 1, 1, &one) != 0) {
			rc = -1;
			continue;
		}
		if (one == -ENOENT && ops[i].kind != OP_ADD)
			continue;   /* not there: that is what we wanted */
		if (one == -EINVAL && ops[i].kind == OP_DESTROY && !n->no_destroy) {
			log_warnx("nft: this kernel cannot destroy set elements (Linux < 6.3): "
			    "a re-ban keeps the timeout it had");
			n->no_destroy = true;
			continue;
		}
		if (one != 0) {
			log_warnx("nft: %s %s: %s", ops[i].kind == OP_ADD ? "adding" : "removing",
			    ops[i].text, strerror(-one));
			rc = -1;
		}
	}
	free(failed);
	return rc;
}

int
nft_commit(struct nft *n)
{
	int rc = 0;

	if (n->no_destroy)
		for (size_t i = 0; i < n->nops; i++)
			if (n->ops[i].kind == OP_DESTROY)
				n->ops[i].kind = OP_DEL;
	if (commit_list(n, n->ops, n->nops) != 0)
		rc = -1;
	if (commit_list(n, n->adds, n->nadds) != 0)
		rc = -1;
	n->nops = n->nadds = 0;
	return rc;
}

static int
elem_found_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	*(bool *)data = true;
	return MNL_CB_OK;
}

/* has_in - 1 if set holds op's start (an element or an interval around
 * it), 0 if not, -1 on error */
static int
has_in(struct nft *n, const char *set, const struct nft_op *op)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s;
	struct nftnl_set_elem *e;
	struct nlmsghdr *nlh;
	uint32_t seq = n->seq++;
	bool found = false;
	ssize_t len;
	int rc;

	if ((s = nftnl_set_alloc()) == NULL)
		return -1;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	if ((e = nftnl_set_elem_alloc()) == NULL) {
		nftnl_set_free(s);
		return -1;
	}
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, op->start, op->family == AF_INET ? 4 : 16);
	nftnl_set_elem_add(s, e);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_ACK, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		if ((len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf))) < 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)len, seq, n->portid, elem_found_cb, &found);
		if (rc == MNL_CB_STOP)
			return found ? 1 : 0;
		if (rc < 0)
			return errno == ENOENT ? 0 : -1;
	}
}

int
nft_has(struct nft *n, const char *addr)
{
	struct nft_op op;
	int rc;

	if (parse_target(addr, &op) != 0)
		return -1;
	/* A prefix is in its set or not; an address is dropped if either
	 * set holds it. */
	if ((rc = has_in(n, set_of(n, op.family, true), &op)) != 0 || op.prefix)
		return rc;
	return has_in(n, set_of(n, op.family, false), &op);
}
