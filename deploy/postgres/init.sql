-- One database per service (ARCHITECTURE.md §2): `<AUDIFI_DB_PREFIX><service>`, prefix `audifi_`.
--
-- The services create their database themselves when it is missing, so this script is only
-- needed where the role in DATABASE_URL may not CREATE DATABASE (a managed server): run it once
-- as a role that may, e.g. `psql "$ADMIN_URL" -f deploy/postgres/init.sql`, then give the
-- databases to the platform's role (ALTER DATABASE ... OWNER TO ...). docker-compose.yml runs it
-- at the first start of its PostgreSQL (/docker-entrypoint-initdb.d). Safe to run again.
-- The gateway is stateless and has no database.
SELECT 'CREATE DATABASE audifi_auth' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_auth')\gexec
SELECT 'CREATE DATABASE audifi_nft' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_nft')\gexec
SELECT 'CREATE DATABASE audifi_vstudio' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_vstudio')\gexec
SELECT 'CREATE DATABASE audifi_coin' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_coin')\gexec
SELECT 'CREATE DATABASE audifi_payment' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_payment')\gexec
SELECT 'CREATE DATABASE audifi_analytics' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_analytics')\gexec
SELECT 'CREATE DATABASE audifi_notify' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'audifi_notify')\gexec
