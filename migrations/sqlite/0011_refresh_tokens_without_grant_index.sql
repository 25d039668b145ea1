-- Refresh tokens without an index on their grant.
-- Revoking a grant no longer deletes its refresh tokens: every statement that reads or spends
-- one asks for its grant to exist and not be revoked (`store::sql::queries::live_grant!`), so
-- they are dead at once and go with the expiry purge. The index only served that delete, and
-- each rotation paid for it with a write at a random place of the index (`docs/benchmarks.md`).
DROP INDEX IF EXISTS refresh_tokens_grant;
