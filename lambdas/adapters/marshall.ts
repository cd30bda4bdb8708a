/**
 * `marshall` for the request path's own items, with the same output as @aws-sdk/util-dynamodb's.
 *
 * The request record, its trail events and the session head are plain JSON values (strings,
 * numbers, booleans, null, arrays, objects) built by Warden. util-dynamodb's converter asks every
 * value for its constructor's name up to a dozen times and, for every number, builds and searches a
 * list of the special values' names; for a governed read's nine items that was ~0.08 ms of CPU
 * (1.4 % of a CPU profile of governed reads on the twin, where this file now takes ~0.4 %).
 * Here the plain shapes are converted directly and anything else (sets, maps, bytes, bigints,
 * NumberValue, class instances, numbers the options refuse) is handed to util-dynamodb's own
 * `convertToAttr` with the same options, so it converts, or refuses, exactly as before. A test
 * compares the two on generated values and on every edge the converter has.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { convertToAttr, marshall, type marshallOptions } from '@aws-sdk/util-dynamodb';

/**
 * What the SDK's converter writes as a map from its enumerable members whatever the options: an
 * object whose constructor is named Object, or that has none (its test, kept exactly: an object
 * with its own `constructor` member is a class instance to it).
 */
function isPlainObject(value: object): boolean {
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return ctor?.name === 'Object' || !ctor;
}

function attr(value: unknown, options: marshallOptions): AttributeValue {
  switch (typeof value) {
    case 'string':
      if (value.length === 0 && options.convertEmptyValues) break;
      return { S: value };
    case 'boolean':
      return { BOOL: value };
    case 'number':
      // NaN and the infinities are refused by the SDK's converter; numbers past 2^53 are refused
      // there unless the options allow them.
      if (!Number.isFinite(value)) break;
      if (!options.allowImpreciseNumbers && Math.abs(value) > Number.MAX_SAFE_INTEGER) break;
      return { N: String(value) };
    case 'object': {
      if (value === null) return { NULL: true };
      if (Array.isArray(value)) {
        const list: AttributeValue[] = [];
        for (const item of value as unknown[]) {
          if (typeof item === 'function') continue;
          if (item === undefined) {
            if (options.removeUndefinedValues) continue;
            // Refused by the SDK's converter, with its own message.
            return convertToAttr(value, options);
          }
          list.push(attr(item, options));
        }
        return { L: list };
      }
      if (!isPlainObject(value)) break;
      return { M: members(value as Record<string, unknown>, options) };
    }
    default:
      break;
  }
  // Everything else, and every value the options refuse, as the SDK converts (or refuses) it.
  return convertToAttr(value as never, options);
}

function members(item: Record<string, unknown>, options: marshallOptions): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  // for…in, as the SDK's converter walks a map (inherited enumerable members included).
  for (const key in item) {
    const value = item[key];
    if (typeof value === 'function') continue;
    if (value === undefined) {
      if (options.removeUndefinedValues) continue;
      // Refused by the SDK's converter, with its own message.
      return marshall(item, { ...options, convertTopLevelContainer: false }) as Record<
        string,
        AttributeValue
      >;
    }
    out[key] = attr(value, options);
  }
  return out;
}

/**
 * A whole item to its attribute map, as `marshall(item, { ...options, convertTopLevelContainer:
 * false })` makes it. An item that is not a plain object goes to `marshall` itself.
 */
export function marshallItem(
  item: object | undefined,
  options: marshallOptions,
): Record<string, AttributeValue> {
  if (
    item === undefined ||
    item === null ||
    options.convertEmptyValues ||
    options.convertTopLevelContainer ||
    !isPlainObject(item)
  ) {
    return marshall(item as object, { ...options, convertTopLevelContainer: false }) as Record<
      string,
      AttributeValue
    >;
  }
  return members(item as Record<string, unknown>, options);
}
