/** mergeflow's version, recorded in every manifest. */

export const VERSION: string = (require('../../package.json') as { version: string }).version;
