using MediatorDiT.Cli;

return await CliApp.RunAsync(args);
