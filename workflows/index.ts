export { dataFreeMerge, progressQuery } from './data_free_merge';
export { adaMergingRun, adaProgressQuery } from './adamerging_run';
