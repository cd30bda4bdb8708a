/** Request bodies of the public contract, validated with zod (unknown fields are refused). */
import { z } from 'zod';
import { badTextCharacter, parameterProblem } from '../core/sql-input.js';

export const sqlParameterSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'parameter names are identifiers'),
    value: z.union([z.string().max(65_536), z.number().finite(), z.boolean(), z.null()]),
    typeHint: z.enum(['DATE', 'TIME', 'TIMESTAMP', 'DECIMAL', 'UUID', 'JSON']).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const problem = parameterProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', path: ['value'], message: `parameter ${p.name} ${problem}` });
  });

/** SQL text: not empty, and nothing PostgreSQL would read differently from the classifier. */
export const sqlTextSchema = z
  .string()
  .min(1, 'sql must not be empty')
  .superRefine((sql, ctx) => {
    const bad = badTextCharacter(sql);
    if (bad) ctx.addIssue({ code: 'custom', message: `sql contains ${bad}` });
  });

export const justificationSchema = z.string().max(2000, 'justification is limited to 2000 characters');

export const sqlBodySchema = z
  .object({
    sql: sqlTextSchema,
    parameters: z.array(sqlParameterSchema).max(200).optional(),
    justification: justificationSchema.optional(),
  })
  .strict();

export const awsBodySchema = z
  .object({
    service: z.string().min(1).max(64),
    action: z.string().min(1).max(128),
    input: z.record(z.string(), z.unknown()).default({}),
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'region must look like us-east-1')
      .optional(),
    justification: justificationSchema.optional(),
  })
  .strict();

export const explainBodySchema = z.union([sqlBodySchema, awsBodySchema]);

export const accessRequestBodySchema = z
  .object({
    level: z.enum(['write', 'ddl']),
    /** Seconds, or a string like "30m", "2h". */
    duration: z.union([z.number().int().positive(), z.string().regex(/^\d+\s*[smh]$/)]),
    justification: justificationSchema.min(1, 'a justification is required'),
  })
  .strict();

export const decisionBodySchema = z
  .object({
    decision: z.enum(['approve', 'deny']),
    comment: z.string().max(2000).optional(),
  })
  .strict();

export function durationSeconds(value: number | string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)\s*([smh])$/.exec(value)!;
  return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
}
