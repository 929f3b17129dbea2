export { dataFreeMerge, progressQuery } from './data_free_merge';
