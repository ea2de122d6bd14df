/*
 * types - the small helpers that belong with the shared types.
 */
#include "types.h"

const char *
target_kind_name(enum target_kind k)
{
	return k == TARGET_IP ? "ip" : "account";
}
