/**
 * What the SQL classifier trusts. Everything here is an ALLOWLIST: a function, operator or
 * tablesample method that is not listed makes a statement "not read". Adding a name is a
 * security decision: only built-ins that neither change state, nor read outside the relations
 * named in the statement (files, other databases, SQL given as a string), nor hold locks.
 */
import type { SqlClass } from '../types.js';
import { PG_IMMUTABLE_FUNCTIONS, PG_OTHER_FUNCTIONS } from './pg-catalog-functions.js';

/**
 * Side-effect-free PostgreSQL built-ins, unqualified (a `pg_catalog.` prefix is stripped before
 * lookup; any other schema is never allowlisted, since only pg_catalog is known to hold the
 * built-ins). Deliberately absent although "read-only": query_to_xml, table_to_xml,
 * cursor_to_xml, ts_stat, ts_rewrite (they run SQL given as text or read a relation the
 * statement does not name), txid_current (assigns a transaction id), and every function in
 * FUNCTION_CLASSES below.
 */
// prettier-ignore
export const READ_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'bit_and', 'bit_or',
  'bit_xor', 'string_agg', 'array_agg', 'json_agg', 'jsonb_agg', 'json_object_agg',
  'jsonb_object_agg', 'json_agg_strict', 'jsonb_agg_strict', 'json_object_agg_strict',
  'jsonb_object_agg_strict', 'json_object_agg_unique', 'jsonb_object_agg_unique',
  'json_object_agg_unique_strict', 'jsonb_object_agg_unique_strict', 'json_arrayagg',
  'json_objectagg', 'xmlagg', 'any_value', 'stddev', 'stddev_pop', 'stddev_samp', 'variance',
  'var_pop', 'var_samp', 'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy',
  'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy',
  'percentile_cont', 'percentile_disc', 'mode', 'range_agg', 'range_intersect_agg',
  // window functions
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead',
  'first_value', 'last_value', 'nth_value',
  // conditionals and comparison
  'coalesce', 'nullif', 'greatest', 'least', 'num_nulls', 'num_nonnulls',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length',
  'bit_length', 'substring', 'substr', 'position', 'strpos', 'trim', 'btrim', 'ltrim', 'rtrim',
  'lpad', 'rpad', 'left', 'right', 'repeat', 'replace', 'reverse', 'split_part', 'concat',
  'concat_ws', 'format', 'overlay', 'translate', 'ascii', 'chr', 'quote_ident', 'quote_literal',
  'quote_nullable', 'starts_with', 'string_to_array', 'string_to_table', 'array_to_string',
  'regexp_replace', 'regexp_match', 'regexp_matches', 'regexp_split_to_array',
  'regexp_split_to_table', 'regexp_like', 'regexp_count', 'regexp_instr', 'regexp_substr',
  'like_escape', 'similar_to_escape', 'similar_escape', 'normalize', 'is_normalized', 'unistr',
  'to_hex', 'to_bin', 'to_oct', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode',
  'decode', 'convert', 'convert_from', 'convert_to', 'casefold',
  // numbers
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'sign', 'sqrt', 'cbrt', 'exp', 'ln',
  'log', 'log10', 'power', 'pow', 'mod', 'div', 'pi', 'degrees', 'radians', 'sin', 'cos', 'tan',
  'asin', 'acos', 'atan', 'atan2', 'sinh', 'cosh', 'tanh', 'gcd', 'lcm', 'factorial', 'scale',
  'min_scale', 'trim_scale', 'width_bucket', 'random', 'random_normal', 'gen_random_uuid',
  'uuidv4', 'uuidv7',
  // dates and times
  'now', 'current_timestamp', 'current_date', 'current_time', 'localtime', 'localtimestamp',
  'clock_timestamp', 'statement_timestamp', 'transaction_timestamp', 'timeofday', 'date_trunc',
  'date_part', 'extract', 'date_bin', 'age', 'make_date', 'make_time', 'make_timestamp',
  'make_timestamptz', 'make_interval', 'justify_days', 'justify_hours', 'justify_interval',
  'isfinite', 'to_char', 'to_date', 'to_timestamp', 'to_number', 'timezone', 'date_add',
  'date_subtract',
  // casts written as functions
  'int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'text', 'varchar', 'bpchar', 'bool',
  'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid', 'inet', 'cidr',
  'money', 'bytea', 'json', 'jsonb', 'xml', 'to_json', 'to_jsonb',
  // arrays and ranges
  'array_length', 'array_lower', 'array_upper', 'array_ndims', 'array_dims', 'array_position',
  'array_positions', 'array_remove', 'array_replace', 'array_append', 'array_prepend',
  'array_cat', 'array_fill', 'array_reverse', 'array_sort', 'array_shuffle', 'array_sample',
  'trim_array', 'cardinality', 'unnest', 'generate_series', 'generate_subscripts', 'lower_inc',
  'upper_inc', 'lower_inf', 'upper_inf', 'isempty', 'range_merge', 'int4range', 'int8range',
  'numrange', 'tsrange', 'tstzrange', 'daterange',
  // json / jsonb builders and accessors
  'json_build_object', 'jsonb_build_object', 'json_build_array', 'jsonb_build_array',
  'json_object', 'jsonb_object', 'json_array', 'row_to_json', 'array_to_json', 'json_scalar',
  'json_serialize', 'json_extract_path', 'jsonb_extract_path', 'json_extract_path_text',
  'jsonb_extract_path_text', 'json_array_length', 'jsonb_array_length', 'json_array_elements',
  'jsonb_array_elements', 'json_array_elements_text', 'jsonb_array_elements_text', 'json_each',
  'jsonb_each', 'json_each_text', 'jsonb_each_text', 'json_object_keys', 'jsonb_object_keys',
  'json_typeof', 'jsonb_typeof', 'json_strip_nulls', 'jsonb_strip_nulls', 'jsonb_pretty',
  'jsonb_set', 'jsonb_set_lax', 'jsonb_insert', 'jsonb_concat', 'jsonb_delete',
  'jsonb_delete_path', 'json_populate_record', 'jsonb_populate_record',
  'json_populate_recordset', 'jsonb_populate_recordset', 'json_to_record', 'jsonb_to_record',
  'json_to_recordset', 'jsonb_to_recordset', 'jsonb_path_exists', 'jsonb_path_match',
  'jsonb_path_query', 'jsonb_path_query_array', 'jsonb_path_query_first', 'jsonb_contains',
  'jsonb_exists', 'jsonb_exists_any', 'jsonb_exists_all', 'json_exists', 'json_value',
  'json_query',
  // xml (reading only what the statement names)
  'xmlexists', 'xpath', 'xpath_exists', 'xmlparse', 'xmlserialize', 'xml_is_well_formed',
  'xml_is_well_formed_document', 'xml_is_well_formed_content',
  // full-text search over given values
  'to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery',
  'ts_rank', 'ts_rank_cd', 'ts_headline', 'setweight', 'strip', 'tsvector_to_array',
  'array_to_tsvector', 'numnode', 'querytree',
  // session and type information that reveals nothing beyond the caller's own session
  'current_setting', 'current_database', 'current_schema', 'current_schemas', 'current_user',
  'session_user', 'system_user', 'current_role', 'user', 'version', 'pg_typeof',
  'pg_collation_for', 'format_type', 'to_regclass', 'to_regtype', 'to_regproc',
  'to_regprocedure', 'to_regnamespace', 'to_regrole', 'pg_column_size', 'has_table_privilege',
  'has_column_privilege', 'has_schema_privilege', 'has_database_privilege',
  'has_function_privilege', 'has_sequence_privilege', 'pg_has_role', 'obj_description',
  'col_description', 'pg_get_viewdef', 'pg_get_indexdef', 'pg_get_constraintdef',
  'pg_get_functiondef', 'pg_get_function_arguments', 'pg_get_function_result', 'pg_get_expr',
  'pg_get_userbyid', 'pg_table_is_visible', 'pg_relation_size', 'pg_total_relation_size',
  'pg_table_size', 'pg_indexes_size', 'pg_size_pretty', 'pg_size_bytes', 'pg_database_size',
  'row', 'host', 'masklen', 'network', 'family',
]);

/**
 * Functions known to do something a read must not, and the class that reflects what. Any other
 * function not on READ_FUNCTIONS (user-defined, extension, unknown built-in) is `write`: it may
 * change data, and the classifier cannot see its body.
 */
export const FUNCTION_CLASSES: ReadonlyMap<string, SqlClass> = new Map<string, SqlClass>([
  ['set_config', 'privilege'], // can SET ROLE-like settings, e.g. set_config('role', …)
  ['nextval', 'write'],
  ['setval', 'write'],
  ['txid_current', 'write'],
  ['pg_current_xact_id', 'write'],
  ['pg_advisory_lock', 'write'],
  ['pg_advisory_lock_shared', 'write'],
  ['pg_advisory_xact_lock', 'write'],
  ['pg_advisory_xact_lock_shared', 'write'],
  ['pg_try_advisory_lock', 'write'],
  ['pg_try_advisory_lock_shared', 'write'],
  ['pg_try_advisory_xact_lock', 'write'],
  ['pg_try_advisory_xact_lock_shared', 'write'],
  ['pg_advisory_unlock', 'write'],
  ['pg_advisory_unlock_shared', 'write'],
  ['pg_advisory_unlock_all', 'write'],
  ['pg_notify', 'write'],
  ['pg_sleep', 'admin'], // holds a connection: a denial-of-service lever, not a query
  ['pg_sleep_for', 'admin'],
  ['pg_sleep_until', 'admin'],
  ['pg_read_file', 'admin'],
  ['pg_read_binary_file', 'admin'],
  ['pg_stat_file', 'admin'],
  ['pg_ls_dir', 'admin'],
  ['pg_file_write', 'admin'],
  ['pg_file_rename', 'admin'],
  ['pg_file_unlink', 'admin'],
  ['pg_terminate_backend', 'admin'],
  ['pg_cancel_backend', 'admin'],
  ['pg_reload_conf', 'admin'],
  ['pg_rotate_logfile', 'admin'],
  ['pg_switch_wal', 'admin'],
  ['pg_promote', 'admin'],
  ['pg_backup_start', 'admin'],
  ['pg_backup_stop', 'admin'],
  ['pg_create_restore_point', 'admin'],
  ['pg_log_backend_memory_contexts', 'admin'],
  ['query_to_xml', 'admin'], // runs SQL passed as a string
  ['query_to_xml_and_xmlschema', 'admin'],
  ['query_to_xmlschema', 'admin'],
  ['cursor_to_xml', 'admin'],
  ['database_to_xml', 'admin'],
  ['schema_to_xml', 'admin'],
  ['table_to_xml', 'admin'],
  ['ts_stat', 'admin'],
  // Overwrite or clear the planner's statistics (PostgreSQL 18): they change what every later plan does.
  ['pg_restore_relation_stats', 'admin'],
  ['pg_restore_attribute_stats', 'admin'],
  ['pg_clear_relation_stats', 'admin'],
  ['pg_clear_attribute_stats', 'admin'],
]);

/** Families of dangerous functions, matched by prefix (large objects, dblink, replication…). */
const ADMIN_PREFIXES = [
  'lo_',
  'dblink',
  'pg_ls_',
  'pg_read_',
  'pg_replication_',
  'pg_logical_',
  'pg_create_logical_replication_slot',
  'pg_create_physical_replication_slot',
  'pg_drop_replication_slot',
  'pg_copy_',
  'pg_wal_replay_',
  'pg_import_system_collations',
  'pg_stat_reset',
];

/**
 * Built-ins that are stable or volatile in the catalogue yet only read catalogue facts about objects
 * the statement names (reviewed one by one; most stable functions are NOT here: they may read
 * settings, other relations or run SQL given as text).
 */
// prettier-ignore
export const REVIEWED_READ_FUNCTIONS: ReadonlySet<string> = new Set([
  'enum_range', 'enum_first', 'enum_last', // an enum type's labels
  'pg_partition_tree', 'pg_partition_ancestors', // a partitioned table's layout
]);

/** Verdict on one function call, from its parsed name (`['pg_catalog', 'lower']`). */
export function functionVerdict(nameParts: readonly string[]): {
  readonly name: string;
  readonly class: SqlClass;
} {
  const qualified = nameParts.join('.');
  const bare =
    nameParts.length === 1
      ? nameParts[0]
      : nameParts.length === 2 && nameParts[0] === 'pg_catalog'
        ? nameParts[1]
        : undefined;
  // A function in any other schema may shadow a built-in's name: it is someone's code.
  if (bare === undefined) return { name: qualified, class: 'write' };
  if (READ_FUNCTIONS.has(bare)) return { name: bare, class: 'read' };
  const known = FUNCTION_CLASSES.get(bare);
  if (known) return { name: bare, class: known };
  if (ADMIN_PREFIXES.some((p) => bare.startsWith(p))) return { name: bare, class: 'admin' };
  // Immutable built-ins compute over their arguments only (PostgreSQL's own promise, per overload).
  if (PG_IMMUTABLE_FUNCTIONS.has(bare) || REVIEWED_READ_FUNCTIONS.has(bare)) {
    return { name: bare, class: 'read' };
  }
  return { name: bare, class: 'write' };
}

/** Whether `name` is a function PostgreSQL ships (in pg_catalog), whatever it does. */
export function isBuiltinFunction(name: string): boolean {
  return PG_IMMUTABLE_FUNCTIONS.has(name) || PG_OTHER_FUNCTIONS.has(name) || READ_FUNCTIONS.has(name);
}

/**
 * Built-in operator symbols. A user can define an operator (`+++`, `OPERATOR(s.+)`) backed by
 * any function, so an operator outside this list is treated like an unknown function.
 */
// prettier-ignore
export const READ_OPERATORS: ReadonlySet<string> = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '^', '|/', '||/', '@', '&',
  '|', '#', '~', '<<', '>>', '||', '~~', '!~~', '~~*', '!~~*', '!~', '~*', '!~*', '->', '->>',
  '#>', '#>>', '@>', '<@', '?', '?|', '?&', '@?', '@@', '@@@', '&&', '#-', '-|-', '<->', '&<',
  '&>', '<<|', '|>>', '&<|', '|&>', '<^', '>^', '?#', '?-', '?-|', '?||', '^@', '<<=', '>>=',
  '##', '@-@', '!!',
  // record image comparison, pattern comparison, geometric "same as" (all immutable in pg_catalog)
  '*=', '*<>', '*<', '*<=', '*>', '*>=', '~<~', '~<=~', '~>~', '~>=~', '~=',
  // keyword-named A_Expr kinds
  'BETWEEN', 'NOT BETWEEN', 'BETWEEN SYMMETRIC', 'NOT BETWEEN SYMMETRIC',
]);

/** TABLESAMPLE methods shipped with PostgreSQL; others are extension or user code. */
export const READ_TABLESAMPLE_METHODS: ReadonlySet<string> = new Set(['bernoulli', 'system']);
