/**
 * What an agent needs to write SQL against a target: its tables and columns, read from the
 * database's own information_schema through the governed path (so the lookup is decided by
 * policy and recorded like any read), with the columns that are masked for this caller marked.
 */
import type { TargetConfig } from '../config.js';
import { BadRequestError } from '../errors.js';
import { compileRule } from '../masking/rules.js';
import {
  canSeeTarget,
  findTarget,
  mayViewUnmasked,
  submitSql,
  type CallMeta,
  type RequestDeps,
} from '../requests.js';
import { NotFoundError } from '../errors.js';
import type { Principal } from '../types.js';

export interface DescribedColumn {
  name: string;
  type: string;
  nullable: boolean;
  /** A column rule masks this column's values for this caller. */
  masked: boolean;
  /** The rule's strategy when `masked`. */
  strategy?: string;
}

export interface DescribedTable {
  schema: string;
  name: string;
  type: string;
  columns: DescribedColumn[];
}

export interface TargetDescription {
  target: string;
  kind: TargetConfig['kind'];
  description: string;
  /** SQL targets: the relations the read-only database user can see. */
  tables?: DescribedTable[];
  /** SQL targets: rows returned before a result is truncated. */
  maxRows?: number;
  /** AWS targets. */
  services?: string[];
  regions?: string[];
  /** True when the lookup itself was cut at the target's row limit. */
  truncated?: boolean;
  /** The request under which the lookup was recorded. */
  requestId?: string;
  masking: string;
}

/** Columns, ordered; the read-only user only sees what it may select, which is what we want. */
export const DESCRIBE_SQL = `SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.table_schema, c.table_name, c.ordinal_position`;

const DETECTOR_NOTE =
  'values in every other column are still scanned for personal data and secrets (emails, cards, SSNs, IBANs, phone numbers, IP addresses, keys and tokens) and masked where found';

export async function describeTarget(
  deps: RequestDeps,
  principal: Principal,
  targetName: string,
  meta: CallMeta,
): Promise<TargetDescription> {
  const target = findTarget(deps.config, targetName);
  const engine = await deps.policies.engine();
  if (!canSeeTarget(engine, principal, targetName, target)) {
    throw new NotFoundError(`unknown target "${targetName}"`);
  }
  if (target.kind === 'mcp') {
    throw new BadRequestError(
      `"${targetName}" is an upstream MCP server: its tools are listed by tools/list as ${targetName}__<tool>`,
    );
  }
  if (target.kind === 'aws') {
    return {
      target: targetName,
      kind: 'aws',
      description: target.description,
      services: [...target.services],
      regions: [...target.regions],
      masking: 'AWS responses are scanned for personal data and secrets and masked where found',
    };
  }

  // Through the governed path: a caller who may not read the target may not list its columns either.
  const outcome = await submitSql(deps, principal, targetName, { sql: DESCRIBE_SQL }, meta);
  if (outcome.status !== 200) {
    throw new DescribeNotRunError(outcome.record.id);
  }
  const rules = target.masking.rules.map(compileRule);
  const tables = new Map<string, DescribedTable>();
  for (const row of outcome.body.result.rows) {
    const schema = String(row.table_schema);
    const table = String(row.table_name);
    const key = `${schema}.${table}`;
    let entry = tables.get(key);
    if (!entry) {
      entry = { schema, name: table, type: String(row.table_type), columns: [] };
      tables.set(key, entry);
    }
    const name = String(row.column_name);
    const rule = rules.find((r) => r.matches({ name, table, schema }))?.rule;
    entry.columns.push({
      name,
      type: String(row.data_type),
      nullable: row.is_nullable === 'YES',
      masked: false,
      ...(rule ? { strategy: rule.strategy } : {}),
    });
  }
  // view_unmasked may be granted per table, so decide per table.
  for (const t of tables.values()) {
    const clear = mayViewUnmasked(engine, principal, targetName, [`${t.schema}.${t.name}`]);
    for (const c of t.columns) {
      if (c.strategy && !clear) c.masked = true;
      else delete c.strategy;
    }
  }
  const unmaskedEverywhere = [...tables.values()].every((t) =>
    mayViewUnmasked(engine, principal, targetName, [`${t.schema}.${t.name}`]),
  );
  return {
    target: targetName,
    kind: 'sql',
    description: target.description,
    tables: [...tables.values()],
    maxRows: target.maxRows,
    truncated: outcome.body.result.truncated,
    requestId: outcome.record.id,
    masking:
      tables.size > 0 && unmaskedEverywhere
        ? 'you may see this target unmasked: results come back as stored'
        : `columns marked masked always come back masked; ${DETECTOR_NOTE}`,
  };
}

/** The schema lookup itself needs approval for this caller: nothing was read. */
export class DescribeNotRunError extends Error {
  constructor(readonly requestId: string) {
    super(`reading the schema needs approval for you (request ${requestId}); nothing was read`);
    this.name = 'DescribeNotRunError';
  }
}
