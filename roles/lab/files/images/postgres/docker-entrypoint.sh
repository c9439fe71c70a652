#!/usr/bin/env bash
# opsdrill postgres entrypoint, with the interface of the official postgres
# image's docker-entrypoint.sh, so one Kubernetes manifest runs with either:
#
#   POSTGRES_PASSWORD          superuser password; required on first start
#                              unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_DB                database created on first start (default: user)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   POSTGRES_INITDB_WALDIR     separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for remote hosts
#                              (default scram-sha-256)
#   PGDATA                     data directory (default /var/lib/postgresql/data)
#   *_FILE                     read any of the POSTGRES_* secrets from a file
#
# An empty PGDATA is initialised with initdb, listen_addresses='*' (from the
# sample config), "host all all all <method>" appended to pg_hba.conf and the
# scripts in /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz, *.sql.xz)
# run against a socket-only temporary server. Started as root, it prepares
# the directories and re-executes itself as postgres (uid 999).
set -Eeo pipefail

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
	local var=$1 file_var="${1}_FILE" value=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		die "both $var and $file_var are set (but are exclusive)"
	fi
	if [ -n "${!var:-}" ]; then
		value=${!var}
	elif [ -n "${!file_var:-}" ]; then
		value=$(<"${!file_var}")
	fi
	export "$var=$value"
	unset "$file_var"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	: "${PGDATA:=/var/lib/postgresql/data}"
	export PGDATA
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

create_directories() {
	local uid
	uid=$(id -u)
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" 2>/dev/null || :
	mkdir -p /var/run/postgresql
	chmod 03775 /var/run/postgresql 2>/dev/null || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$uid" = 0 ]; then
			find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		fi
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$uid" = 0 ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		EOM
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		log 'WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow'
		log '         anyone with access to the Postgres port to access your database'
		log '         without a password, even if POSTGRES_PASSWORD is set.'
	fi
}

init_database_dir() {
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list on purpose
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		$POSTGRES_INITDB_ARGS "$@"
}

setup_hba_conf() {
	if [ -z "$POSTGRES_HOST_AUTH_METHOD" ]; then
		POSTGRES_HOST_AUTH_METHOD=$(postgres -C password_encryption "$@" 2>/dev/null || echo scram-sha-256)
	fi
	{
		printf '\n'
		if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
			printf '# warning trust is enabled for all connections\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

temp_server_start() {
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

process_sql() {
	local args=(--username "$POSTGRES_USER" --no-password --no-psqlrc -v ON_ERROR_STOP=1)
	if [ -n "${POSTGRES_DB:-}" ]; then
		args+=(--dbname "$POSTGRES_DB")
	fi
	PGHOST='' PGHOSTADDR='' psql "${args[@]}" "$@"
}

setup_db() {
	local exists db=$POSTGRES_DB
	exists=$(POSTGRES_DB=postgres process_sql --set db="$db" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)
	if [ -z "$exists" ]; then
		POSTGRES_DB=postgres process_sql --set db="$db" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
		log
	fi
}

process_init_files() {
	local f
	log
	for f in "$@"; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					log "$0: running $f"
					"$f"
				else
					log "$0: sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) log "$0: running $f"; process_sql -f "$f"; log ;;
			*.sql.gz) log "$0: running $f"; gunzip -c "$f" | process_sql; log ;;
			*.sql.xz) log "$0: running $f"; xzcat "$f" | process_sql; log ;;
			*.sql.zst) log "$0: running $f"; zstd -dc "$f" | process_sql; log ;;
			*) log "$0: ignoring $f" ;;
		esac
	done
}

want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?' | --help | --describe-config | -V | --version) return 0 ;;
		esac
	done
	return 1
}

main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = postgres ] && ! want_help "$@"; then
		setup_env
		create_directories
		if [ "$(id -u)" = 0 ]; then
			exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			verify_minimum_env
			# fail early if the init scripts are unreadable
			ls /docker-entrypoint-initdb.d/ >/dev/null
			init_database_dir
			setup_hba_conf "${@:2}"
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			temp_server_start "${@:2}"
			setup_db
			process_init_files /docker-entrypoint-initdb.d/*
			temp_server_stop
			unset PGPASSWORD
			log
			log 'PostgreSQL init process complete; ready for start up.'
			log
		else
			log
			log 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
			log
		fi
	fi
	exec "$@"
}

main "$@"
