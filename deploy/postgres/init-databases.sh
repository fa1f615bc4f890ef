#!/bin/sh
# First-start initialisation of the compose stack's PostgreSQL (run by the postgres
# image from /docker-entrypoint-initdb.d): one login role and one database per
# service, each database owned by its role and closed to everyone else, so no
# service can read another's tables.
#
# Environment:
#   FOLLOWTHROUGH_DATABASES  services to create (default: goals sessions notifications)
#   <NAME>_DB_PASSWORD       the password of each service's role (required)
#   POSTGRES_USER            the superuser to connect as (set by the postgres image)
set -eu

for name in ${FOLLOWTHROUGH_DATABASES:-goals sessions notifications}; do
    variable="$(echo "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password="$(printenv "$variable" || true)"
    if [ -z "$password" ]; then
        echo "init-databases: $variable is not set" >&2
        exit 1
    fi
    psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" \
        --dbname postgres --set name="$name" --set password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
    echo "init-databases: database and role $name created"
done
