export { startDashboard, QUEUES_PATH, type Dashboard, type DashboardOptions } from './server.js';
export { listRuns, type RunView, type ListRunsOptions } from './runs.js';
export { renderRunsPage, escapeHtml, type RunsPageOptions } from './runs-page.js';
export { accessGuard, securityHeaders, hostName, allowedHostName, generateToken, LOOPBACK_NAMES, MIN_TOKEN_LENGTH, type AccessPolicy } from './access.js';
