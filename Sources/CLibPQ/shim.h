// libpq's C API for Swift, from Debian's libpq-dev. Only the Postgres target includes this
// module. Swift does not import character-literal macros, so the error fields that the
// Postgres target reads are given here as constants, each prefixed `cpq_`; nothing else is here.
#include <features.h>
#include <libpq-fe.h>

/// The five-character SQLSTATE of an error result (`PG_DIAG_SQLSTATE`, the character 'C').
static const int cpq_diag_sqlstate = PG_DIAG_SQLSTATE;
/// The primary, human-readable message of an error result (`PG_DIAG_MESSAGE_PRIMARY`).
static const int cpq_diag_message_primary = PG_DIAG_MESSAGE_PRIMARY;
/// The constraint an error names, if any (`PG_DIAG_CONSTRAINT_NAME`).
static const int cpq_diag_constraint_name = PG_DIAG_CONSTRAINT_NAME;
