/** A small, explicit router: method + path pattern → route, with named path parameters. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { MethodNotAllowedError, NotFoundError } from '../core/errors.js';

export interface Route<C> {
  readonly method: string;
  /** `/v1/targets/{target}/sql` */
  readonly path: string;
  readonly handle: (ctx: C, params: Record<string, string>) => Promise<unknown>;
}

interface CompiledRoute<C> extends Route<C> {
  readonly regex: RegExp;
  readonly names: string[];
}

const SEGMENT = '([^/]{1,200})';

export class Router<C> {
  private readonly routes: CompiledRoute<C>[];

  constructor(routes: readonly Route<C>[]) {
    this.routes = routes.map((r) => {
      const names: string[] = [];
      const pattern = r.path
        .split('/')
        .map((part) => {
          const m = /^\{(\w+)\}$/.exec(part);
          if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(m[1]);
          return SEGMENT;
        })
        .join('/');
      return { ...r, regex: new RegExp(`^${pattern}$`), names };
    });
  }

  match(event: APIGatewayProxyEventV2): { route: Route<C>; params: Record<string, string> } {
    const method = event.requestContext.http.method.toUpperCase();
    const path = event.rawPath || event.requestContext.http.path;
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => {
        params[n] = safeDecode(m[i + 1]);
      });
      return { route: r, params };
    }
    if (pathMatched) throw new MethodNotAllowedError(`${method} is not allowed on ${path}`);
    throw new NotFoundError(`no route for ${method} ${path}`);
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
