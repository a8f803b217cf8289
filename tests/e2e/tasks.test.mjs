// Tasks and follow-ups, reminders and the calendar, driven by labels and
// roles against the release build.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, newPage, shot, useAppAndBrowser } from './harness.mjs';

const env = useAppAndBrowser();

/** The browser's local date as YYYY-MM-DD, offset by `days`. */
async function localDate(page, days = 0) {
  return page.evaluate((days) => {
    const d = new Date();
    d.setDate(d.getDate() + days);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }, days);
}

async function createContact(page, given, family) {
  await page.goto(`${env.server.url}/contacts/new`);
  await page.getByLabel('Given name').fill(given);
  await page.getByLabel('Family name').fill(family);
  await page.getByRole('button', { name: 'Create contact' }).click();
  await page.getByRole('heading', { name: `${given} ${family}` }).waitFor();
}

async function gotoTasks(page) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /^Tasks/ }).click();
  await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();
}

async function openDone(page) {
  const done = page.getByTestId('tasks-done');
  if ((await done.getAttribute('open')) === null) await done.locator('summary').click();
  return done;
}

test('a follow-up from a contact page: under Today, completed, undone, done after a reload; a deleted link goes grey', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/tasks`);
  await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();
  await page.getByText('No tasks yet').waitFor();

  await createContact(page, 'Grace', 'Hopper');
  const followUps = page.getByRole('region', { name: 'Follow-ups' });
  await followUps.getByText('No open follow-ups').waitFor();
  await eventually(async () => assert.equal(await followUps.getByLabel('Due date').inputValue(), await localDate(page), 'due today by default'));

  // An empty title is refused next to the field, with focus on it.
  await followUps.getByRole('button', { name: 'Add follow-up' }).click();
  await eventually(async () => assert.equal(await page.locator('#follow-up-title-error').innerText(), 'Required'));
  // Focus moves on the next animation frame, once the field is marked invalid.
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.id), 'follow-up-title'));

  await followUps.getByLabel('Follow-up', { exact: true }).fill('Send the proposal');
  await followUps.getByRole('button', { name: 'Add follow-up' }).click();
  await followUps.getByRole('checkbox', { name: 'Send the proposal' }).waitFor();
  await eventually(async () => assert.equal(await followUps.getByLabel('Follow-up', { exact: true }).inputValue(), '', 'the form is ready for the next one'));
  await eventually(async () => assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByTestId('task-count').locator('[aria-hidden="true"]').innerText(), '1'));
  await page.getByRole('link', { name: /^Tasks.*1 due today or overdue$/ }).waitFor();

  // A task with details, linked through the picker, due tomorrow.
  await page.getByRole('link', { name: 'New task with details' }).click();
  await page.getByRole('heading', { name: 'New task' }).waitFor();
  await eventually(async () => assert.match(await page.getByTestId('linked-record').innerText(), /Grace Hopper/, 'linked from ?link='));
  await page.getByRole('button', { name: 'Remove link' }).click();
  await page.getByLabel('Linked record').fill('hopp');
  await page.getByRole('button', { name: /Grace Hopper/ }).click();
  await page.getByLabel('Title').fill('Prepare the demo');
  await page.getByLabel('Due date').fill(await localDate(page, 1));
  await page.getByLabel('Time (optional)').fill('10:30');
  await page.getByLabel('Priority').selectOption({ label: 'High' });
  await page.getByRole('button', { name: 'Add task' }).click();
  await page.getByRole('heading', { name: 'Grace Hopper' }).waitFor();
  await followUps.getByRole('checkbox', { name: 'Prepare the demo' }).waitFor();

  // A task with a time but no date is refused.
  await page.goto(`${env.server.url}/tasks/new`);
  await page.getByLabel('Title').fill('Renew the domain');
  await page.getByLabel('Due date').fill('');
  await page.getByLabel('Time (optional)').fill('09:00');
  await page.getByRole('button', { name: 'Add task' }).click();
  await page.getByText('Choose a date for the time').waitFor();
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement?.id), 'due_date'));
  await page.getByLabel('Time (optional)').fill('');
  await page.getByRole('button', { name: 'Add task' }).click();
  await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();

  const today = page.getByTestId('tasks-today');
  const proposal = today.getByRole('checkbox', { name: 'Send the proposal' });
  await proposal.waitFor();
  await eventually(async () => assert.match(await today.innerText(), /Grace Hopper/));
  await today.getByRole('link', { name: /Grace Hopper/ }).waitFor();
  await page.getByTestId('tasks-upcoming').getByRole('checkbox', { name: 'Prepare the demo' }).waitFor();
  await eventually(async () => assert.match(await page.getByTestId('tasks-upcoming').innerText(), /Tomorrow, 10:30[\s\S]*High priority/));
  await page.getByTestId('tasks-no-due-date').getByRole('checkbox', { name: 'Renew the domain' }).waitFor();
  await page.getByTestId('tasks-overdue').getByText('Nothing overdue.').waitFor();
  await shot(page, 'desktop-tasks');

  // Complete it, undo, complete again. A click, not check(): a completed
  // task leaves Today at once, so check() could not read its state after.
  await proposal.click();
  await page.getByText('Completed “Send the proposal”').waitFor();
  await today.getByText('Nothing due today.').waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('task-count').count(), 0));
  await page.getByRole('button', { name: 'Undo' }).click();
  await today.getByRole('checkbox', { name: 'Send the proposal' }).waitFor();
  await today.getByRole('checkbox', { name: 'Send the proposal' }).click();
  const done = await openDone(page);
  await eventually(async () => assert.equal(await done.getByRole('checkbox', { name: 'Send the proposal' }).isChecked(), true));

  // Still done after a reload.
  await page.reload();
  await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();
  const doneAgain = await openDone(page);
  await eventually(async () => assert.equal(await doneAgain.getByRole('checkbox', { name: 'Send the proposal' }).isChecked(), true));
  await page.getByTestId('tasks-today').getByText('Nothing due today.').waitFor();

  // Deleting the contact leaves its task with grey text, not a broken link.
  await page.getByTestId('tasks-upcoming').getByRole('link', { name: /Grace Hopper/ }).click();
  await page.getByRole('heading', { name: 'Grace Hopper' }).waitFor();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByText('Deleted Grace Hopper').waitFor();
  await gotoTasks(page);
  const upcoming = page.getByTestId('tasks-upcoming');
  await upcoming.getByText('Grace Hopper (deleted)').waitFor();
  await eventually(async () => assert.equal(await upcoming.getByRole('link', { name: /Grace Hopper/ }).count(), 0));
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a reminder when a task falls due, a desktop notification once allowed; tasks and a meeting on the calendar', async () => {
  // A fixed day in a zone away from UTC: Tuesday 24 November 2026, 09:58 in Berlin.
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Berlin' });
  await context.clock.install({ time: Date.UTC(2026, 10, 24, 8, 58, 0) });
  // Desktop notifications, recorded instead of shown; the permission
  // outlives a reload like a real one.
  await context.addInitScript(() => {
    window.__notifications = [];
    class FakeNotification {
      constructor(title, options) {
        window.__notifications.push({ title, body: options?.body });
      }
    }
    FakeNotification.permission = sessionStorage.getItem('fake-permission') ?? 'default';
    FakeNotification.requestPermission = async () => {
      FakeNotification.permission = 'granted';
      sessionStorage.setItem('fake-permission', 'granted');
      return 'granted';
    };
    window.Notification = FakeNotification;
  });
  const page = await newPage(context);
  await page.goto(`${env.server.url}/tasks`);
  await page.getByRole('heading', { name: 'Tasks', exact: true }).waitFor();

  // Nothing is asked until the user presses the button.
  await eventually(async () => assert.equal(await page.evaluate(() => Notification.permission), 'default'));
  await page.getByRole('button', { name: 'Turn on desktop reminders' }).click();
  await page.getByText('Desktop reminders are on.').waitFor();

  await createContact(page, 'Ada', 'Lovelace');
  const followUps = page.getByRole('region', { name: 'Follow-ups' });
  const addFollowUp = async (title, time, date = '2026-11-24') => {
    await followUps.getByLabel('Follow-up', { exact: true }).fill(title);
    await followUps.getByLabel('Due date').fill(date);
    await followUps.getByLabel('Time (optional)').fill(time);
    await followUps.getByRole('button', { name: 'Add follow-up' }).click();
    await followUps.getByRole('checkbox', { name: title }).waitFor();
  };
  await addFollowUp('Call Ada back', '10:00');
  // Already due when it is created: listed as late, never announced.
  await addFollowUp('Check the contract', '09:30');
  await addFollowUp('Send the minutes', '16:00', '2026-11-26');
  await followUps.scrollIntoViewIfNeeded();
  await shot(page, 'desktop-follow-ups');

  // A meeting logged on her page, tomorrow afternoon.
  const activity = page.getByTestId('activity-panel');
  await activity.getByRole('button', { name: 'Meeting' }).click();
  await activity.getByLabel('Subject').fill('Quarterly review');
  await activity.getByLabel('Date and time').fill('2026-11-25T14:00');
  await activity.getByLabel('Duration (minutes)').fill('45');
  await activity.getByRole('button', { name: 'Log meeting' }).click();
  await activity.getByText('Quarterly review').first().waitFor();

  await gotoTasks(page);
  const today = page.getByTestId('tasks-today');
  await today.getByRole('checkbox', { name: 'Call Ada back' }).waitFor();
  const late = today.getByRole('listitem').filter({ hasText: 'Check the contract' });
  await late.getByText('Late').waitFor();
  await eventually(async () => assert.equal(await page.getByTestId('reminder').count(), 0));

  // 10:00:30: the reminder appears (once), with a desktop notification.
  await page.clock.fastForward('02:30');
  const reminder = page.getByRole('group', { name: 'Reminder: Call Ada back' });
  await eventually(() => reminder.waitFor({ timeout: 1000 }), 10000);
  await eventually(async () => assert.match(await reminder.innerText(), /Due Today, 10:00/));
  await eventually(async () => assert.equal(await page.getByTestId('reminder').count(), 1, 'the task already due is not announced'));
  const notes = await page.evaluate(() => window.__notifications);
  assert.deepEqual(notes.map((n) => n.title), ['Due: Call Ada back']);
  await shot(page, 'desktop-reminder');

  // Mark it done from the reminder.
  await reminder.getByRole('button', { name: 'Mark done' }).click();
  await reminder.waitFor({ state: 'detached' });
  const done = await openDone(page);
  await eventually(async () => assert.equal(await done.getByRole('checkbox', { name: 'Call Ada back' }).isChecked(), true));

  // The calendar: this week, with the tasks and the meeting on their days.
  await page.getByRole('link', { name: 'Calendar' }).click();
  await page.getByRole('heading', { name: 'Calendar', exact: true }).waitFor();
  const week = page.getByTestId('cal-week');
  await eventually(async () => assert.equal(await page.getByTestId('cal-range').innerText(), '23 – 29 Nov 2026'));
  const tuesday = week.locator('[data-date="2026-11-24"]');
  await tuesday.getByRole('link', { name: /Call Ada back/ }).waitFor();
  await tuesday.getByRole('link', { name: /Check the contract/ }).waitFor();
  const meeting = week.locator('[data-date="2026-11-25"]').getByRole('link', { name: /Quarterly review/ });
  await eventually(async () => assert.match(await meeting.innerText(), /14:00–14:45/));
  await week.locator('[data-date="2026-11-26"]').getByRole('link', { name: /Send the minutes/ }).waitFor();
  await shot(page, 'desktop-calendar-week');

  // Next and previous week, then the month.
  await page.getByRole('button', { name: 'Next week' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('cal-range').innerText(), '30 Nov – 6 Dec 2026'));
  await week.getByText('Quarterly review').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Today' }).click();
  await page.getByRole('button', { name: 'Month', exact: true }).click();
  await eventually(async () => assert.equal(await page.getByRole('button', { name: 'Month', exact: true }).getAttribute('aria-pressed'), 'true'));
  const month = page.getByTestId('cal-month');
  await eventually(async () => assert.equal(await page.getByTestId('cal-range').innerText(), 'November 2026'));
  await month.getByRole('group', { name: 'Wednesday 25 November' }).getByRole('link', { name: /Quarterly review/ }).waitFor();
  await month.getByRole('group', { name: 'Tuesday 24 November' }).getByRole('link', { name: /Call Ada back/ }).waitFor();
  await shot(page, 'desktop-calendar-month');
  await page.getByRole('button', { name: '30, Monday 30 November: show that week' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('cal-range').innerText(), '30 Nov – 6 Dec 2026'));
  await page.getByRole('button', { name: 'Previous week' }).click();
  await page.getByRole('button', { name: 'Month', exact: true }).click();
  await page.getByRole('button', { name: 'Next month' }).click();
  await eventually(async () => assert.equal(await page.getByTestId('cal-range').innerText(), 'December 2026'));
  await page.getByRole('button', { name: 'Previous month' }).click();

  // Entries open their record: the meeting its contact, a task its edit page.
  await month.getByRole('link', { name: /Quarterly review/ }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await page.goBack();
  await page.getByRole('heading', { name: 'Calendar', exact: true }).waitFor();
  await page.getByTestId('cal-week').getByRole('link', { name: /Send the minutes/ }).click();
  await page.getByRole('heading', { name: 'Edit task: Send the minutes' }).waitFor();
  await eventually(async () => assert.equal(await page.getByLabel('Due date').inputValue(), '2026-11-26'));

  await shot(page, 'desktop-task-form');

  // Phone widths.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'phone-task-form');
  await page.getByRole('link', { name: 'Ada Lovelace' }).click();
  await page.getByRole('heading', { name: 'Ada Lovelace' }).waitFor();
  await followUps.scrollIntoViewIfNeeded();
  await shot(page, 'phone-follow-ups');
  await gotoTasks(page);
  await page.getByTestId('tasks-today').getByRole('checkbox', { name: 'Check the contract' }).waitFor();
  await shot(page, 'phone-tasks');
  // On a phone the calendar is under "More" in the bottom bar.
  await page.getByRole('button', { name: 'More' }).click();
  await page.getByRole('link', { name: 'Calendar' }).click();
  await page.getByTestId('cal-week').waitFor();
  await shot(page, 'phone-calendar-week');
  await page.getByRole('button', { name: 'Month', exact: true }).click();
  await page.getByTestId('cal-month').waitFor();
  await shot(page, 'phone-calendar-month');
  assert.deepEqual(page.errors, []);
  await context.close();
});
