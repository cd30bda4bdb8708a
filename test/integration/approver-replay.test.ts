/**
 * The approval page links to the requester's session replay (issue 17 item 4): an approver who is
 * not an auditor may read that session, masked and read-only, while a request of theirs to decide
 * waits in it; and nothing else. As an attacker: another session, no request, a request decided
 * already, a request id that does not belong to the session, a forged id, someone who may not
 * approve, and the requester themselves all get the same 403 and no event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HAS_CHROMIUM,
  NO_CHROMIUM_MESSAGE,
  openBrowser,
  reviewLinkFromOutbox,
  screenshot,
  signInAt,
} from '../support/browser.js';
import { PageSession } from '../support/page-session.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

if (!HAS_CHROMIUM) console.warn(`approver-replay: ${NO_CHROMIUM_MESSAGE}`);

let twin: TestTwin;
let alice: string;
let bob: string;
let carol: string;
let dave: string;

const SSN = '123-45-6789';
const READ = `SELECT email FROM customers WHERE ssn = '${SSN}'`;

async function sql(token: string, session: string, body: Record<string, unknown>) {
  const res = await twin.api('POST', '/v1/targets/demo/sql', {
    token,
    headers: { 'x-warden-session': session },
    body,
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body.requestId as string;
}

async function sessionOf(token: string, requestId: string): Promise<string> {
  const res = await twin.api('GET', `/v1/requests/${requestId}`, { token });
  expect(res.status).toBe(200);
  return res.body.sessionId as string;
}

async function replay(token: string | undefined, path: string) {
  const res = await fetch(`${twin.url}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    redirect: 'manual',
  });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

let pendingId: string;
let sessionId: string;
let link: string;
let otherSession: string;
let otherPending: string;
let decidedId: string;

beforeAll(async () => {
  twin = await startTestTwin();
  [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((u) => twin.token(u)));
  const read = await sql(alice, 'ticket-replay', { sql: READ });
  pendingId = await sql(alice, 'ticket-replay', {
    sql: 'DELETE FROM orders WHERE id = 3',
    justification: 'duplicate order',
  });
  sessionId = await sessionOf(alice, read);
  expect(await sessionOf(alice, pendingId)).toBe(sessionId);
  const view = await twin.api('GET', `/v1/approvals/${pendingId}`, { token: bob });
  expect(view.status).toBe(200);
  link = view.body.links.replay;

  otherPending = await sql(alice, 'ticket-other', { sql: 'DELETE FROM orders WHERE id = 4' });
  otherSession = await sessionOf(alice, otherPending);
  expect(otherSession).not.toBe(sessionId);

  decidedId = await sql(alice, 'ticket-decided', { sql: 'DELETE FROM orders WHERE id = 5' });
  const denied = await twin.api('POST', `/v1/approvals/${decidedId}/decision`, {
    token: bob,
    body: { decision: 'deny', comment: 'no' },
  });
  expect(denied.status).toBe(200);
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

describe('an approver reading the requester’s session', () => {
  it('gets a link naming the request', () => {
    expect(link).toBe(`/replay/${encodeURIComponent(sessionId)}?request=${pendingId}`);
  });

  it('is shown the session through that link: masked, read-only, under the page protections', async () => {
    const res = await replay(bob, link);
    expect(res.status, res.html.slice(0, 300)).toBe(200);
    expect(res.html).toContain('id="for-request"');
    expect(res.html).toContain('DELETE FROM orders WHERE id = 3');
    expect(res.html).toMatch(/SELECT email FROM customers WHERE ssn = /);
    expect(res.html).not.toContain(SSN);
    expect(res.html).not.toMatch(/<form|<button|<script/i);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('is refused the same session without the request, and every other session', async () => {
    const paths = [
      `/replay/${encodeURIComponent(sessionId)}`,
      `/replay/${encodeURIComponent(otherSession)}?request=${pendingId}`,
      `/replay/${encodeURIComponent(sessionId)}?request=${otherPending}`,
      `/replay/${encodeURIComponent(sessionId)}?request=r_AAAAAAAAAAAAAAAAAAAAAA`,
      `/replay/${encodeURIComponent(await sessionOf(alice, decidedId))}?request=${decidedId}`,
      `/replay/${encodeURIComponent(sessionId)}?request=../../x`,
    ];
    for (const path of paths) {
      const res = await replay(bob, path);
      expect(res.status, path).toBe(403);
      expect(res.html, path).not.toContain('DELETE FROM orders');
      expect(res.html, path).not.toContain('<ol class="timeline">');
    }
  });

  it('refuses someone who may not approve it, and the requester, with the same link', async () => {
    for (const token of [carol, alice]) {
      const res = await replay(token, link);
      expect(res.status).toBe(403);
      expect(res.html).not.toContain('DELETE FROM orders');
    }
  });

  it('stops once the request is decided', async () => {
    const id = await sql(alice, 'ticket-replay', { sql: 'DELETE FROM orders WHERE id = 6' });
    const url = `/replay/${encodeURIComponent(sessionId)}?request=${id}`;
    expect((await replay(bob, url)).status).toBe(200);
    const denied = await twin.api('POST', `/v1/approvals/${id}/decision`, {
      token: bob,
      body: { decision: 'deny' },
    });
    expect(denied.status).toBe(200);
    expect((await replay(bob, url)).status).toBe(403);
  });

  it('leaves auditors as they were: any session, no request needed', async () => {
    const res = await replay(dave, `/replay/${encodeURIComponent(otherSession)}`);
    expect(res.status).toBe(200);
    expect(res.html).not.toContain('id="for-request"');
  });

  it('keeps the request through sign-in: the IdP brings the browser back to the same link', async () => {
    const res = await replay(undefined, link);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).not.toContain(twin.url + '/replay');
  });

  it('works with the page sign-in (session cookie): from the approval page’s link, and back from the IdP', async () => {
    const bobPage = new PageSession(twin.url);
    const review = await bobPage.signIn(`/approve/${pendingId}`, 'bob');
    expect(review.res.status).toBe(200);
    const href = /<a id="replay" href="([^"]+)"/.exec(review.text)?.[1]?.replaceAll('&amp;', '&');
    expect(href).toBe(link);
    const shown = await bobPage.follow(href!);
    expect(shown.res.status).toBe(200);
    expect(shown.text).toContain(`approver of <a href="/approve/${pendingId}">${pendingId}</a>`);
    expect((await bobPage.follow(`/replay/${encodeURIComponent(otherSession)}`)).res.status).toBe(403);
    expect(
      (await bobPage.follow(`/replay/${encodeURIComponent(otherSession)}?request=${pendingId}`)).res.status,
    ).toBe(403);

    // A fresh browser opening the replay link signs in and comes back to it, request included.
    const fresh = new PageSession(twin.url);
    const back = await fresh.signIn(link, 'bob');
    expect(back.url).toBe(new URL(link, twin.url).toString());
    expect(back.res.status).toBe(200);
    expect(back.text).toContain('id="for-request"');
    // carol signs in the same way and is refused.
    const carolPage = new PageSession(twin.url);
    expect((await carolPage.signIn(link, 'carol')).res.status).toBe(403);
  });

  it.skipIf(!HAS_CHROMIUM)('follows the approval page’s link in Chromium as bob', async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, await reviewLinkFromOutbox(twin, pendingId), 'bob');
      await page.locator('#replay').click();
      await page.locator('ol.timeline').waitFor();
      expect(new URL(page.url()).pathname).toBe(`/replay/${encodeURIComponent(sessionId)}`);
      const text = await page.locator('main').innerText();
      expect(text).toContain(`approver of ${pendingId}`);
      expect(text).toContain('DELETE FROM orders WHERE id = 3');
      expect(text).not.toContain(SSN);
      await screenshot(page, 'approver-replay');
      // The same browser, another session: refused.
      const other = await page.goto(`${twin.url}/replay/${encodeURIComponent(otherSession)}`);
      expect(other?.status()).toBe(403);
    } finally {
      await browser.close();
    }
  });

  it.skipIf(!HAS_CHROMIUM)('brings a browser signing in from the link back to the replay', async () => {
    const browser = await openBrowser();
    try {
      const { page } = browser;
      await signInAt(page, `${twin.url}${link}`, 'bob');
      await page.locator('#for-request').waitFor();
      // Back on the replay the approval link named, not somewhere else after sign-in.
      expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe(link);
      expect(await page.locator('#for-request').textContent()).toContain('Shown to you as an approver');
    } finally {
      await browser.close();
    }
  });
});
