export { startDashboard, DEFAULT_DASHBOARD_PORT, QUEUES_PATH, type Dashboard, type DashboardOptions } from './server.js';
export { listRuns, type RunView, type ListRunsOptions } from './runs.js';
export { renderRunsPage, escapeHtml, type RunsPageOptions } from './runs-page.js';
