// The slice of actions/github-script's `github` (an Octokit) that the scripts in this folder use.
// Parameters and responses are loose records: the tests' fake checks the calls it receives.
export type RestParams = Record<string, unknown>;
export type RestCall = (params: RestParams) => Promise<{ data: unknown }>;

export interface GitHubClient {
  paginate(method: RestCall, params: RestParams): Promise<unknown[]>;
  rest: {
    pulls: { get: RestCall };
    issues: {
      listComments: RestCall;
      createComment: RestCall;
      updateComment: RestCall;
      deleteComment: RestCall;
      listForRepo: RestCall;
      create: RestCall;
      update: RestCall;
      getLabel: RestCall;
      createLabel: RestCall;
    };
  };
}
