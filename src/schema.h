/*
 * schema - schemas/NNN-NAME.sql compiled into the binary (generated schema.c):
 * step i brings a SQLite DB to user_version = version.  schemas/pg/ likewise
 * for PostgreSQL (generated pg_schema.c; the version is in schema_version).
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
extern const struct schema_step pg_schema_steps[];
extern const unsigned pg_schema_nsteps;

#endif
