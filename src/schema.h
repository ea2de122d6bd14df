/*
 * schema - schemas/NNN-NAME.sql compiled into the binary (generated schema.c).
 * Step i brings the DB to user_version = version.
 */
#ifndef MAILJAIL_SCHEMA_H
#define MAILJAIL_SCHEMA_H

struct schema_step {
	int version;
	const char *name;
	const char *sql;
};

extern const struct schema_step schema_steps[];
extern const unsigned schema_nsteps;

#endif
