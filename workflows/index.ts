export { dataFreeMerge, progressQuery } from './data_free_merge';
export { adaMergingRun, adaProgressQuery } from './adamerging_run';
export { frankWolfeRun, fwProgressQuery } from './frank_wolfe_run';
