/**
 * Runtime configuration: targets, masking rules, approvals. In AWS the stack serialises it into
 * the WARDEN_CONFIG environment variable; the local twin writes the demo configuration. Parsed
 * and validated once at cold start; a bad configuration fails the cold start loudly.
 */
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';

const approvalSchema = z
  .object({
    /** Seconds an approval may take before the request expires. @default 3600 */
    windowSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 24 * 3600)
      .default(3600),
    /** Distinct approvers needed. @default 1 */
    requiredApprovals: z.number().int().min(1).max(10).default(1),
    slackChannel: z.string().optional(),
    emails: z.array(z.string()).default([]),
    /** Groups shown to requesters as "waiting for"; who may approve is decided by Cedar. */
    approverGroups: z.array(z.string()).default([]),
  })
  .strict();

const columnRuleSchema = z
  .object({
    column: z.string().min(1),
    strategy: z.enum(['redact', 'partial', 'hash', 'null']),
    type: z.string().optional(),
  })
  .strict();

const maskingSchema = z
  .object({
    rules: z.array(columnRuleSchema).default([]),
    /**
     * ISO 3166 region that phone numbers written without `+` are read in (libphonenumber's
     * region codes: `US`, `GB`, `DE`…). @default 'US'
     */
    phoneRegion: z
      .string()
      .refine((r) => isSupportedCountry(r), {
        message: 'not a region libphonenumber knows (e.g. US, GB, DE)',
      })
      .default('US'),
  })
  .strict();

/** A PostgreSQL identifier as written unquoted or quoted; quoted by Warden wherever it is used. */
const pgIdentifier = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s, 'utf8') <= 63 && !s.includes('\0'), {
    message: 'a PostgreSQL name has at most 63 bytes and no NUL',
  });

/** One identifier as `format('%I')` writes it: bare when it needs no quotes, else double-quoted. */
const IDENT = String.raw`(?:[a-z_][a-z0-9_$]*|"(?:[^"\0]|"")+")`;
/** `schema.name`, as `warden db check` names a relation. */
const qualifiedName = z.string().regex(new RegExp(`^${IDENT}\\.${IDENT}$`), {
  message: 'a relation as the check names it: schema.name (a name with capitals or symbols in double quotes)',
});
/** `schema.name(argument types)`, as `warden db check` names a function. */
const qualifiedFunction = z
  .string()
  .max(1000)
  .regex(new RegExp(`^${IDENT}\\.${IDENT}\\([^()]*(?:\\([^()]*\\)[^()]*)*\\)$`), {
    message: 'a function as the check names it: schema.name(argument types), e.g. public.f(integer, text)',
  });

/**
 * The database side of a SQL target (docs/masking.md): the Warden users `warden db setup` creates
 * and pins, and the schemas whose tables get masking views.
 */
const sqlDbSchema = z
  .object({
    /** Schemas whose tables are the target's data (masked per profile). @default ['public'] */
    schemas: z.array(pgIdentifier).min(1).default(['public']),
    /** Database users behind each secret, and the NOLOGIN role owning the masking views and key. */
    users: z
      .object({
        read: pgIdentifier.default('warden_ro'),
        write: pgIdentifier.default('warden_rw'),
        maskedRead: pgIdentifier.default('warden_masked_ro'),
        maskedWrite: pgIdentifier.default('warden_masked_rw'),
        owner: pgIdentifier.default('warden_mask_owner'),
      })
      .strict()
      .default({
        read: 'warden_ro',
        write: 'warden_rw',
        maskedRead: 'warden_masked_ro',
        maskedWrite: 'warden_masked_rw',
        owner: 'warden_mask_owner',
      }),
    /**
     * Relations and `SECURITY DEFINER` functions outside Warden's schemas that the masked users may
     * keep (docs/masking.md, "Exceptions"): PostGIS's `public.spatial_ref_sys` and its views, say.
     * Each is written as the check names it (`schema.name`, `schema.name(argument types)`). The check
     * still refuses an exempt table with a masked column, and an exempt view or materialized view
     * that reads a relation the masked user may not read on its own and that is not exempt itself.
     * @default none
     */
    maskedMayUse: z
      .object({
        relations: z.array(qualifiedName).max(200).default([]),
        functions: z.array(qualifiedFunction).max(200).default([]),
      })
      .strict()
      .optional(),
    /**
     * Secret of an administrator used only by `warden db setup --apply` and `warden db check`
     * from an operator's machine; never given to the gateway's functions.
     */
    adminSecret: z.string().min(1).optional(),
  })
  .strict();

/** The database users and schemas `warden db setup` creates when a target names none. */
export const DEFAULT_SQL_DB = {
  schemas: ['public'],
  users: {
    read: 'warden_ro',
    write: 'warden_rw',
    maskedRead: 'warden_masked_ro',
    maskedWrite: 'warden_masked_rw',
    owner: 'warden_mask_owner',
  },
};

const sqlTargetSchema = z
  .object({
    kind: z.literal('sql'),
    description: z.string().default(''),
    resourceArn: z.string().min(1),
    database: z.string().min(1),
    secrets: z
      .object({
        read: z.string().min(1),
        write: z.string().min(1),
        /** The masked profile's users; required before a principal without `view_unmasked` is served. */
        maskedRead: z.string().min(1).optional(),
        maskedWrite: z.string().min(1).optional(),
      })
      .strict(),
    db: sqlDbSchema.default(DEFAULT_SQL_DB),
    /** Statement timeout of every Warden database user (role setting), in ms. @default 5000 */
    statementTimeoutMs: z.number().int().min(100).max(45_000).default(5000),
    /** Rows returned before `truncated: true`. @default 1000 */
    maxRows: z.number().int().min(1).max(100_000).default(1000),
    /** A write estimated to touch more rows than this is high risk for approvers. @default 1000 */
    blastRadiusRows: z.number().int().min(0).default(1000),
    masking: maskingSchema.default({ rules: [], phoneRegion: 'US' }),
    approvals: approvalSchema.default({
      windowSeconds: 3600,
      requiredApprovals: 1,
      emails: [],
      approverGroups: [],
    }),
  })
  .strict();

const awsTargetSchema = z
  .object({
    kind: z.literal('aws'),
    description: z.string().default(''),
    roleArn: z.string().min(1),
    account: z.string().regex(/^\d{12}$/),
    regions: z.array(z.string()).min(1),
    services: z.array(z.string()).min(1),
    masking: maskingSchema.default({ rules: [], phoneRegion: 'US' }),
    approvals: approvalSchema.default({
      windowSeconds: 3600,
      requiredApprovals: 1,
      emails: [],
      approverGroups: [],
    }),
  })
  .strict();

/** How Warden authenticates to an upstream MCP server; the credential itself lives in a secret. */
const mcpAuthSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z
    .object({
      type: z.literal('header'),
      /** Header name, e.g. `Authorization` or `X-Api-Key`. */
      header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
      /** Secret (ARN, or a name under the twin's data dir) whose value is the header's value. */
      secret: z.string().min(1),
    })
    .strict(),
  z
    .object({
      type: z.literal('oauth_client_credentials'),
      tokenUrl: z.url(),
      clientId: z.string().min(1),
      /** Secret whose value is the client secret. */
      secret: z.string().min(1),
      scope: z.string().optional(),
    })
    .strict(),
]);

const mcpToolOverrideSchema = z
  .object({
    /** Overrides what the tool's annotations say: read, write (not destructive) or destructive. */
    class: z.enum(['read', 'write', 'destructive']).optional(),
    /** Never list or call this tool. */
    hidden: z.boolean().default(false),
  })
  .strict();

const mcpTargetSchema = z
  .object({
    kind: z.literal('mcp'),
    description: z.string().default(''),
    /** The upstream's streamable HTTP endpoint. */
    url: z.url(),
    auth: mcpAuthSchema.default({ type: 'none' }),
    /** Per-tool overrides by the upstream's tool name. */
    tools: z.record(z.string(), mcpToolOverrideSchema).default({}),
    /** Milliseconds a tool call may take before it is a tool error. @default 10000 */
    timeoutMs: z.number().int().min(100).max(25_000).default(10_000),
    /** Seconds the upstream's tool list is cached. @default 60 */
    listCacheSeconds: z.number().int().min(0).max(3600).default(60),
    masking: maskingSchema.default({ rules: [], phoneRegion: 'US' }),
    approvals: approvalSchema.default({
      windowSeconds: 3600,
      requiredApprovals: 1,
      emails: [],
      approverGroups: [],
    }),
  })
  .strict();

const targetSchema = z.discriminatedUnion('kind', [sqlTargetSchema, awsTargetSchema, mcpTargetSchema]);

export const wardenConfigSchema = z
  .object({
    targets: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/), targetSchema),
    /** Largest SQL text accepted, in bytes. @default 65536 */
    maxSqlBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
    /** Largest request body accepted, in bytes. @default 262144 */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .default(256 * 1024),
    /** Rows of a result kept in the audit record (the response itself keeps up to maxRows). @default 100 */
    recordedRows: z.number().int().min(0).max(1000).default(100),
    /** Days trail items are kept; longer than the export interval. @default 400 */
    auditTtlDays: z.number().int().min(2).default(400),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const [name, target] of Object.entries(config.targets)) {
      // Upstream tools are listed as <target>__<tool>: the target's name must split off unambiguously.
      if (target.kind === 'mcp' && (name.includes('__') || name.endsWith('_'))) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', name],
          message: `an MCP target's name may not contain "__" or end with "_" (its tools are listed as ${name}__<tool>)`,
        });
      }
    }
  });

export type WardenConfig = z.infer<typeof wardenConfigSchema>;
export type TargetConfig = z.infer<typeof targetSchema>;
export type SqlTargetConfig = z.infer<typeof sqlTargetSchema>;
export type AwsTargetConfig = z.infer<typeof awsTargetSchema>;
export type McpTargetConfig = z.infer<typeof mcpTargetSchema>;
export type ApprovalConfig = z.infer<typeof approvalSchema>;
export type WardenConfigInput = z.input<typeof wardenConfigSchema>;

export function parseConfig(input: unknown): WardenConfig {
  const parsed = wardenConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new Error(`invalid Warden configuration: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Reads WARDEN_CONFIG once; fails fast when it is missing or invalid. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): WardenConfig {
  const raw = env.WARDEN_CONFIG;
  if (!raw) throw new Error('WARDEN_CONFIG is not set');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new Error('WARDEN_CONFIG is not valid JSON', { cause });
  }
  return parseConfig(json);
}
