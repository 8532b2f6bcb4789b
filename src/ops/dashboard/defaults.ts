/** Default `DashboardOptions.port`, in a module of its own so that the CLI can name it without loading the server. */
export const DEFAULT_DASHBOARD_PORT = 3000;
