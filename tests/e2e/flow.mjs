// The whole loop in a real browser: a resident reports on the H5 site (arriving from a grid's
// QR code, with a photo) → it appears live in the community's inbox → staff register and
// dispatch → the unit accepts and finishes → the resident rates → staff close it.
// Usage: node flow.mjs BASE_URL PASSWORD
import { chromium } from 'playwright-core';

const [base, password] = process.argv.slice(2);
const fail = (msg) => { console.error('E2E FAILED: ' + msg); process.exit(1); };
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010800000000' + '3a7e9b55', 'hex');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const login = async (user) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(base + '/login');
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    if (page.url().includes('/login')) fail('login failed for ' + user);
    return page;
  };
  const act = async (page, action, fill) => {
    const form = page.locator(`form:has(input[name=action][value=${action}])`);
    const details = page.locator(`details:has(input[name=action][value=${action}])`);
    if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
    if (fill) await fill(form);
    await Promise.all([page.waitForNavigation(), form.locator('button').click()]);
  };

  // The community's staff watch their inbox.
  const staff = await login('huahuaqiao');
  await staff.goto(base + '/cases?status=submitted');

  // A resident arrives from the grid's QR code and reports with a photo.
  const resident = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await resident.goto(base + '/m/report?grid=520627001001001');
  await resident.selectOption('select[name=category]', 'ldd');
  await resident.fill('textarea[name=description]', '3 栋 2 单元楼道的灯坏了，晚上很黑');
  await resident.fill('input[name=reporter_phone]', '13812345678');
  await resident.setInputFiles('input[name=photos]', { name: 'lamp.png', mimeType: 'image/png', buffer: PNG });
  // Tapped twice, as on a slow phone: one report, not two.
  await Promise.all([resident.waitForNavigation(), resident.dblclick('form#report button[type=submit]')]);
  const number = (await resident.textContent('#number')).trim();
  if (!/^YH-\d{4}-\d{6}$/.test(number)) fail('no case number: ' + number);
  await resident.waitForTimeout(1500);
  const next = number.replace(/\d{6}$/, (n) => String(Number(n) + 1).padStart(6, '0'));
  const twice = await staff.request.get(base + '/api/v1/cases/' + next);
  if (twice.status() !== 404) fail('a double tap filed a second report: ' + next + ' answered ' + twice.status());

  // It shows up in the staff inbox without reloading (server-sent events).
  await staff.waitForSelector(`text=${number}`, { timeout: 15000 }).catch(() => fail('case did not appear live in the inbox'));

  // Staff register and dispatch to the unit the category suggests.
  await staff.goto(base + '/cases/' + number);
  await act(staff, 'register');
  await act(staff, 'dispatch', async (f) => { await f.locator('select[name=assignee]').selectOption('DW036'); });

  // The unit accepts and finishes.
  const unit = await login('dw036');
  await unit.goto(base + '/cases?status=dispatched&mine=true');
  await unit.click(`text=${number}`);
  await act(unit, 'accept');
  await act(unit, 'finish', async (f) => { await f.locator('input[name=note]').fill('已更换灯泡'); });

  // The resident tracks and rates.
  await resident.goto(`${base}/m/track?number=${number}`);
  await resident.fill('input[name=phone]', '13812345678');
  await Promise.all([resident.waitForNavigation(), resident.click('form[action="/m/track"] button')]);
  await resident.check('input[value=satisfied]');
  await Promise.all([resident.waitForNavigation(), resident.click('form#rate button')]);
  const st = (await resident.textContent('#status')).trim();
  if (st !== '待结案') fail('after rating, status is ' + st);

  // Staff close it.
  await staff.goto(base + '/cases/' + number);
  await act(staff, 'close');
  const tag = await staff.textContent('section.card .tag');
  if (!tag.includes('已结案')) fail('not closed: ' + tag);
  const timeline = await staff.textContent('.timeline');
  for (const step of ['受理', '立案', '派单', '接单', '办结', '评价', '结案']) {
    if (!timeline.includes(step)) fail('timeline lacks ' + step);
  }
  console.log('E2E OK ' + number);
} finally {
  await browser.close();
}
