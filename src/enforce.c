/*
 * enforce - the backend table.  See enforce.h.
 *
 * Backends are thin adapters: the nft backend turns a verdict into an element
 * with the ban's remaining time as its kernel timeout; the real work is in
 * nft.c (and holdmap.c for the Postfix maps).
 */
#include "enforce.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "holdmap.h"
#include "log.h"
#include "nft.h"

/* dry-run: records nothing itself (the verdicts are in the store already) */
static int
dry_init(void **state, const struct config *cfg, char *err, size_t errlen)
{
	(void)cfg; (void)err; (void)errlen;
	*state = NULL;
	return 0;
}

static int
dry_ban(void *state, const struct verdict *v, int64_t now)
{
	(void)state; (void)v; (void)now;
	return 0;
}

static int
dry_unban(void *state, const char *target, enum target_kind kind)
{
	(void)state; (void)target; (void)kind;
	return 0;
}

static int
dry_sync(void *state)
{
	(void)state;
	return 0;
}

static void
dry_fini(void *state)
{
	(void)state;
}

static const struct enforcer_ops dry_run_backend = {
	"dry-run", 0, dry_init, dry_ban, dry_unban, dry_sync, NULL, NULL, dry_fini,
};

static int
nftb_init(void **state, const struct config *cfg, char *err, size_t errlen)
{
	struct nft_options o;
	struct nft *n;

	config_nft_options(cfg, &o);
	if (nft_open(&n, &o, err, errlen) != 0)
		return -1;
	*state = n;
	return 0;
}

static int
nftb_ban(void *state, const struct verdict *v, int64_t now)
{
	int64_t left = v->expires_at - now;

	if (v->kind != TARGET_IP)
		return 0;
	if (left <= 0)
		return 0;   /* already over: nothing to tell the kernel */
	return nft_ban(state, v->target, (uint64_t)left * 1000);
}

static int
nftb_unban(void *state, const char *target, enum target_kind kind)
{
	if (kind != TARGET_IP)
		return 0;
	return nft_unban(state, target);
}

static int
nftb_sync(void *state)
{
	return nft_commit(state);
}

static int
nftb_check(void *state)
{
	char err[256];
	int rc = nft_check(state);

	if (rc != 0)
		return rc;
	if (nft_setup(state, err, sizeof(err)) != 0) {
		log_warnx("nft: cannot re-create the table: %s", err);
		return -1;
	}
	return 0;
}

static void
nftb_fini(void *state)
{
	nft_close(state);
}

static const struct enforcer_ops nft_backend = {
	"nft", ACTION_NFT, nftb_init, nftb_ban, nftb_unban, nftb_sync, nftb_check,
	NULL, nftb_fini,
};

/* hold: accounts into the Postfix HOLD map (check_sasl_access) */
static int
holdb_init(void **state, const struct config *cfg, char *err, size_t errlen)
{
	struct holdmap *m;

	if (holdmap_open(&m, cfg->hold_map, HOLDMAP_HOLD, cfg->postfix_config_dir,
	    err, errlen) != 0)
		return -1;
	*state = m;
	return 0;
}

/* holdb_ban - the account map's answer: HOLD, or for a jail with action
 * defer its reply (a 4xx: the client sees a temporary failure and nothing
 * waits in the hold queue) */
static int
holdb_ban(void *state, const struct verdict *v, int64_t now)
{
	char value[256];

	if (v->kind != TARGET_ACCOUNT || v->expires_at <= now)
		return 0;
	/* The text shows in Postfix's log and to the client; jail names and
	 * replies come from the admin's config, never from the log. */
	if (v->actions & ACTION_DEFER)
		snprintf(value, sizeof(value), "%s", v->reply && *v->reply ? v->reply :
		    "450 4.7.1 Too much mail from your account, try again later");
	else
		snprintf(value, sizeof(value), "HOLD mailjail %s level %d", v->jail, v->level);
	return holdmap_add(state, v->target, value, v->expires_at);
}

static int
holdb_unban(void *state, const char *target, enum target_kind kind)
{
	if (kind != TARGET_ACCOUNT)
		return 0;
	return holdmap_remove(state, target) < 0 ? -1 : 0;
}

/* reject: client IPs into a check_client_access map answering the reply */
static int
rejectb_init(void **state, const struct config *cfg, char *err, size_t errlen)
{
	struct holdmap *m;

	if (holdmap_open(&m, cfg->reject_map, HOLDMAP_REJECT, cfg->postfix_config_dir,
	    err, errlen) != 0)
		return -1;
	*state = m;
	return 0;
}

static int
rejectb_ban(void *state, const struct verdict *v, int64_t now)
{
	if (v->kind != TARGET_IP || v->expires_at <= now)
		return 0;
	if (strchr(v->target, '/') != NULL) {
		/* Postfix's sqlite:/hash: client lookups match whole addresses
		 * (and IPv4 octet prefixes), not CIDR: nft covers prefixes. */
		log_warnx("reject: %s is a prefix; a reject map holds addresses only",
		    v->target);
		return 0;
	}
	return holdmap_add(state, v->target, v->reply && *v->reply ? v->reply :
	    "450 4.7.1 Too many errors from your address, try again later", v->expires_at);
}

static int
rejectb_unban(void *state, const char *target, enum target_kind kind)
{
	if (kind != TARGET_IP)
		return 0;
	return holdmap_remove(state, target) < 0 ? -1 : 0;
}

static int
mapb_sync(void *state)
{
	return holdmap_sync(state);
}

static int
mapb_expire(void *state, int64_t now)
{
	if (holdmap_expire(state, now) < 0)
		return -1;
	return holdmap_sync(state);
}

static void
mapb_fini(void *state)
{
	holdmap_close(state);
}

/* hold and defer share the account map (check_sasl_access): one backend */
static const struct enforcer_ops hold_backend = {
	"hold", ACTION_HOLD | ACTION_DEFER, holdb_init, holdb_ban, holdb_unban, mapb_sync, NULL,
	mapb_expire, mapb_fini,
};

static const struct enforcer_ops reject_backend = {
	"reject", ACTION_REJECT, rejectb_init, rejectb_ban, rejectb_unban, mapb_sync, NULL,
	mapb_expire, mapb_fini,
};

static const struct enforcer_ops *const backends[] = {
	&dry_run_backend,
	&nft_backend,
	&hold_backend,
	&reject_backend,
};

const struct enforcer_ops *
enforce_backend(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

int
enforce_open(struct backend_set *b, const struct config *cfg, unsigned actions)
{
	static const struct { unsigned bit; const char *name; } wanted[] = {
		{ ACTION_NFT, "nft" }, { ACTION_HOLD | ACTION_DEFER, "hold" },
		{ ACTION_REJECT, "reject" },
	};

	b->n = 0;
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		const struct enforcer_ops *ops;
		char err[512] = "";

		if (!(actions & wanted[i].bit))
			continue;
		if ((ops = enforce_backend(wanted[i].name)) == NULL) {
			log_warnx("action %s is not available in this build", wanted[i].name);
			goto fail;
		}
		if (ops->init(&b->state[b->n], cfg, err, sizeof(err)) != 0) {
			log_warnx("%s: %s", wanted[i].name, err);
			goto fail;
		}
		b->ops[b->n++] = ops;
	}
	return 0;
fail:
	enforce_close(b);
	return -1;
}

void
enforce_close(struct backend_set *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->ops[i]->fini(b->state[i]);
	b->n = 0;
}
