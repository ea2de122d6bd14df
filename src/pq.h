/*
 * pq - libpq, loaded the first time a PostgreSQL store is opened (dynlib.h),
 * not linked: a mailjail on a SQLite file never maps libpq and the twenty
 * libraries it pulls in (OpenSSL, Kerberos, LDAP).  store_pgsql.c calls
 * libpq as pq.PQexec(...) with libpq's own prototypes (libpq-fe.h).
 *
 * Memory: the library stays loaded until the process ends.
 */
#ifndef MAILJAIL_PQ_H
#define MAILJAIL_PQ_H

#include <stddef.h>

#include <libpq-fe.h>

/* The libpq functions mailjail uses. */
#define PQ_FUNCTIONS(X) \
	X(PQbackendPID) X(PQcancel) X(PQclear) X(PQcmdTuples) X(PQconnectdbParams) \
	X(PQconninfoFree) X(PQconninfoParse) X(PQconsumeInput) X(PQenterPipelineMode) \
	X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQexitPipelineMode) X(PQfinish) \
	X(PQfreeCancel) X(PQfreemem) X(PQgetCancel) X(PQgetResult) X(PQgetisnull) \
	X(PQgetlength) X(PQgetvalue) X(PQisBusy) X(PQnotifies) X(PQntuples) \
	X(PQpipelineSync) X(PQprepare) X(PQputCopyData) X(PQputCopyEnd) \
	X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus) X(PQsendQuery) \
	X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQsetNoticeProcessor) \
	X(PQsetSingleRowMode) X(PQsocket) X(PQstatus)

struct pq_api {
#define PQ_MEMBER(f) __typeof__(f) *f;
	PQ_FUNCTIONS(PQ_MEMBER)
#undef PQ_MEMBER
};

extern struct pq_api pq;

/* Load libpq (once).  0, or -1 with the reason in err (not installed:
 * apt-get install libpq5; too old for pipeline mode: PostgreSQL 14's
 * libpq or later is needed). */
int pq_load(char *err, size_t errlen);

#endif
